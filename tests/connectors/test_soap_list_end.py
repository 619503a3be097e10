"""A SOAP list whose end falls on a page boundary, or that is shorter than one page, read
by pages without a total: the page after the last is an empty `<products/>`, which zeep
gives as `products: None`. `records: products.Product` met that null and the run failed
"no records at 'products.Product' in the response" though every record had arrived (a
helper's hunt). A null on the records path is an empty page now; the end is decided as
for any empty page, and a whole read is still checked against the totals.

Against the project's own SOAP sandbox (spyne) on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.connectors._selectors import null_on_the_way
from interlink.sandbox import SandboxServer
from interlink.sandbox._soap import create_soap_app


async def _ids(url: str, paginate: dict[str, Any]) -> list[int]:
    config = InterlinkConfig.model_validate(
        {
            "connections": {"soap": {"base_url": url, "retry": {"max_attempts": 1}}},
            "resources": {
                "soap": {
                    "products": {
                        "type": "soap",
                        "wsdl": "/?wsdl",
                        "operation": "GetProducts",
                        "records": "products.Product",
                        "paginate": paginate,
                    }
                }
            },
        }
    )
    async with Catalog(config) as catalog:
        return [record["id"] async for record in catalog.resource("soap.products").records()]


@pytest.mark.parametrize(
    ("records", "paginate"),
    [
        (5, {"type": "page", "page_size": 10, "size_param": "pageSize"}),
        (10, {"type": "page", "page_size": 5, "size_param": "pageSize"}),
    ],
    ids=["shorter-than-a-page", "ends-on-a-page"],
)
async def test_a_list_that_ends_without_a_total_is_read_whole(
    records: int, paginate: dict[str, Any]
) -> None:
    with SandboxServer(create_soap_app(records=records)) as server:
        ids = await _ids(server.url, paginate)
    assert len(ids) == records and len(set(ids)) == records


def test_only_a_null_on_the_way_is_an_empty_page() -> None:
    assert null_on_the_way({"products": None}, "products.Product")
    assert null_on_the_way({"a": {"b": None}}, "a.b.c")
    assert not null_on_the_way({"products": {}}, "products.Product"), "a key left out"
    assert not null_on_the_way({"other": None}, "products.Product")
    assert not null_on_the_way({"products": None}, "products[].id"), "JMESPath: its own rules"
    assert not null_on_the_way(None, "products.Product"), "a null body is no empty list"


async def test_elsewhere_a_null_on_the_records_path_is_no_empty_page() -> None:
    """REST: `{"code": 500, "data": null}` is an error reply an API answers with 200; read
    as an empty page it would end a read as whole (and a full refresh would empty the
    table). It fails as the error it is."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from interlink.errors import ApiError

    async def busy(request: Any) -> JSONResponse:
        return JSONResponse({"code": 500, "msg": "system busy", "data": None})

    with SandboxServer(Starlette(routes=[Route("/items", busy)])) as server:
        config = InterlinkConfig.model_validate(
            {
                "connections": {"api": {"base_url": server.url, "retry": {"max_attempts": 1}}},
                "resources": {"api": {"items": {"path": "/items", "records": "data.list"}}},
            }
        )
        async with Catalog(config) as catalog:
            with pytest.raises(ApiError, match=r"reported an error: system busy \(code 500\)"):
                [r async for r in catalog.resource("api.items").records()]
