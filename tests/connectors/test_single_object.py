"""A single-object endpoint (`GET /products/123`) reads as one record without `records:`,
while list endpoints and envelopes are read exactly as before."""

from __future__ import annotations

import httpx
import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.connectors._selectors import is_one_record
from interlink.errors import ApiError
from interlink.sandbox import SandboxServer, create_shop_app


@pytest.fixture(scope="module")
def shop():
    with SandboxServer(create_shop_app(records=12)) as server:
        yield server


def catalog_for(url: str, resources: dict) -> Catalog:
    return Catalog(
        InterlinkConfig.model_validate(
            {"connections": {"shop": {"base_url": url}}, "resources": {"shop": resources}}
        )
    )


async def read(catalog: Catalog, name: str) -> list[dict]:
    async with catalog:
        return [r async for r in catalog.resource(name).records()]


async def test_one_object_is_one_record(shop):
    catalog = catalog_for(shop.url, {"product": {"path": "/products/3"}})
    [product] = await read(catalog, "shop.product")
    assert product["id"] == 3 and product["sku"] == "SKU-000003"


async def test_list_endpoints_stay_lists(shop):
    catalog = catalog_for(
        shop.url,
        {
            "enveloped": {"path": "/products"},  # {"data": [...], "total", ...}: its data
            "bare": {"path": "/customers/link", "paginate": "link_header"},
            "paged": {"path": "/customers", "paginate": {"type": "offset", "page_size": 5}},
        },
    )
    async with catalog:
        enveloped = [r async for r in catalog.resource("shop.enveloped").records()]
        bare = [r async for r in catalog.resource("shop.bare").records()]
        paged = [r async for r in catalog.resource("shop.paged").records()]
    assert len(enveloped) > 1 and all("sku" in r for r in enveloped)
    assert [r["id"] for r in bare] == list(range(1, 13))
    assert [r["id"] for r in paged] == list(range(1, 13))


def answering(body: dict) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, json=body))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"data": {"id": 5, "name": "wrapped"}}, [{"id": 5, "name": "wrapped"}]),
        ({"data": [{"id": 1}, {"id": 2}]}, [{"id": 1}, {"id": 2}]),
        # An order whose own status says "failed" is a record, not an error envelope.
        (
            {"id": 9, "status": "failed", "items": [{"sku": "A"}]},
            [{"id": 9, "status": "failed", "items": [{"sku": "A"}]}],
        ),
    ],
)
async def test_bodies_without_records(body, expected):
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": "https://api.example.com"}},
            "resources": {"api": {"one": {"path": "/one"}}},
        }
    )
    async with Catalog(config, transport=answering(body)) as catalog:
        assert [r async for r in catalog.resource("api.one").records()] == expected


@pytest.mark.parametrize(
    "body",
    [
        {"items": [{"id": 1}], "total": 1},  # an envelope: say where with `records:`
        {"status": "error", "message": "export disabled"},  # an error envelope still fails
    ],
)
async def test_envelopes_without_an_id_are_not_one_record(body):
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": "https://api.example.com"}},
            "resources": {"api": {"one": {"path": "/one"}}},
        }
    )
    async with Catalog(config, transport=answering(body)) as catalog:
        with pytest.raises(ApiError):
            [r async for r in catalog.resource("api.one").records()]


def test_is_one_record():
    assert is_one_record({"id": 123, "name": "Lamp"}, "id")
    assert is_one_record({"sku": "A-1"}, "sku")
    assert is_one_record({"meta": {"code": "x"}, "n": 1}, "meta.code")
    assert not is_one_record({"id": None}, "id")
    assert not is_one_record({"data": {"id": 1}, "id": 1}, "id")
    assert not is_one_record({"items": [{"id": 1}]}, "id")
    assert not is_one_record([{"id": 1}], "id")
