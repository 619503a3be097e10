"""A `page` read whose API counts pages (`total_pages_path`) but not records: a page before
the last that comes with fewer records than the others is records missing. It passed, as
the count of pages agreed, and the read ended "succeeded" with them missing (a helper's
hunt, through the SOAP connector; REST uses the same paginator). Now it is an incomplete
read naming the page. A real server on 127.0.0.1 serves 50 items, 10 a page."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import IncompleteReadError
from interlink.sandbox import SandboxServer


def _app(served: list[int], *, lose_on: int | None, size: int = 10) -> Starlette:
    async def items(request: Request) -> JSONResponse:
        page = int(request.query_params.get("page", "1"))
        ids = list(range((page - 1) * size + 1, min(page * size, 50) + 1))
        if page == lose_on:
            ids = ids[3:]  # three records the API lost on its way
        served.append(page)
        return JSONResponse({"items": [{"id": i} for i in ids], "totalPages": -(-50 // size)})

    return Starlette(routes=[Route("/items", items)])


async def _read(url: str, page_size: int = 10) -> list[int]:
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": url, "retry": {"max_attempts": 1}}},
            "resources": {
                "api": {
                    "items": {
                        "path": "/items",
                        "records": "items",
                        "paginate": {
                            "type": "page",
                            "page_size": page_size,
                            "total_pages_path": "totalPages",
                        },
                    }
                }
            },
        }
    )
    async with Catalog(config) as catalog:
        return [record["id"] async for record in catalog.resource("api.items").records()]


async def test_a_page_short_of_records_before_the_last_is_an_incomplete_read() -> None:
    served: list[int] = []
    with SandboxServer(_app(served, lose_on=2)) as server:
        with pytest.raises(IncompleteReadError) as caught:
            await _read(server.url)
    assert sorted(served) == [1, 2, 3, 4, 5], "every page was asked for and served"
    assert "47 records arrived" in str(caught.value)
    assert "5 pages of 10 by the `totalPages` field (page 2 had 7)" in str(caught.value)


@pytest.mark.parametrize("size", [10, 5])
async def test_a_whole_read_or_a_server_that_caps_its_pages_is_whole(size: int) -> None:
    served: list[Any] = []
    with SandboxServer(_app(served, lose_on=None, size=size)) as server:
        ids = await _read(server.url, page_size=10)
    assert ids == list(range(1, 51))
