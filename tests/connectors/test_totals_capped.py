"""Whole reads that ended early and still passed as whole, because the paginator took a
page for the last one: a page size the server caps without saying so and no total
(offset, page number), and `has_more: true` on an empty page. Each asserts that its server
really held more than a short read would get; the last tests hold the cost of the fix
down: one request more for a list shorter than a page, and a page past the last that the
API refuses (DRF's 404 `Invalid page.`) ends the read instead of failing it.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import ApiError, IncompleteReadError, PaginationError
from interlink.sandbox import SandboxServer

CAP = 100
RECORDS = 250


class CappingApi:
    """250 records. `/offset?offset=&limit=` and `/pages?page=&per_page=` serve at most
    100 a page whatever is asked, and announce no total. `/stripe?starting_after=&limit=`
    answers one empty page with `has_more: true` in the middle of the list (a filtered
    scan's empty window)."""

    def __init__(self) -> None:
        self.items = [{"id": i} for i in range(1, RECORDS + 1)]
        self.requests = 0
        self.blank_sent = False

    def app(self) -> Starlette:
        async def offset(request: Request) -> JSONResponse:
            self.requests += 1
            start = int(request.query_params.get("offset", 0))
            size = min(int(request.query_params.get("limit", 10)), CAP)
            return JSONResponse({"data": self.items[start : start + size]})

        async def pages(request: Request) -> JSONResponse:
            self.requests += 1
            page = int(request.query_params.get("page", 1))
            size = min(int(request.query_params.get("per_page", 10)), CAP)
            return JSONResponse({"data": self.items[(page - 1) * size : page * size]})

        async def stripe(request: Request) -> JSONResponse:
            self.requests += 1
            after = int(request.query_params.get("starting_after", 0))
            size = int(request.query_params.get("limit", 10))
            if after >= 100 and not self.blank_sent:
                self.blank_sent = True
                return JSONResponse({"data": [], "has_more": True})
            rows = [item for item in self.items if item["id"] > after][:size]
            more = bool(rows) and rows[-1]["id"] < RECORDS
            return JSONResponse({"data": rows, "has_more": more})

        return Starlette(
            routes=[Route("/offset", offset), Route("/pages", pages), Route("/stripe", stripe)]
        )


def catalog(url: str, resource: dict[str, Any]) -> Catalog:
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": url, "retry": {"max_attempts": 1}}},
            "resources": {"api": {"items": {"records": "data", **resource}}},
        }
    )
    return Catalog(config)


async def read_ids(cat: Catalog) -> list[int]:
    ids: list[int] = []
    async with cat:
        async for page in cat.resource("api.items").pages():
            ids.extend(record["id"] for record in page.records)
            assert page.number < 100, "the read does not stop"
    return ids


async def read_or_refuse(resource: dict[str, Any]) -> tuple[CappingApi, list[int] | None]:
    """The ids of a read that passed, or None when it was refused (the outcome wanted)."""
    api = CappingApi()
    with SandboxServer(api.app()) as server:
        try:
            return api, await read_ids(catalog(server.url, resource))
        except (IncompleteReadError, PaginationError):
            return api, None


async def test_an_offset_read_whose_page_size_the_api_caps_reads_everything():
    api, ids = await read_or_refuse(
        {"path": "/offset", "paginate": {"type": "offset", "page_size": 1000, "total_path": None}}
    )
    assert api.requests >= 1 and len(api.items) == RECORDS
    assert ids is None or sorted(ids) == list(range(1, RECORDS + 1)), (
        f"the read passed as whole with {len(ids)} of {RECORDS} records"
    )


async def test_a_page_number_read_whose_page_size_the_api_caps_reads_everything():
    api, ids = await read_or_refuse(
        {"path": "/pages", "paginate": {"type": "page", "page_size": 1000}}
    )
    assert api.requests >= 1
    assert ids is None or sorted(ids) == list(range(1, RECORDS + 1)), (
        f"the read passed as whole with {len(ids)} of {RECORDS} records"
    )


async def test_has_more_with_an_empty_page_is_not_the_end_of_a_whole_read():
    resource = {
        "path": "/stripe",
        "params": {"limit": 50},
        "paginate": {
            "type": "cursor",
            "cursor_field": "id",
            "cursor_param": "starting_after",
            "stop_when": {"path": "has_more", "equals": False},
        },
    }
    api, ids = await read_or_refuse(resource)
    assert api.blank_sent, "the empty page with has_more: true was served"
    assert ids is None or sorted(ids) == list(range(1, RECORDS + 1)), (
        f"the read passed as whole with {len(ids)} of {RECORDS} records"
    )


class ShortListApi:
    """7 records; `/pages?page=` answers 404 past the last page (as DRF does) and
    `/offset?offset=` an empty list past the end; neither announces a total."""

    def __init__(self) -> None:
        self.items = [{"id": i} for i in range(1, 8)]
        self.requests: list[str] = []

    def app(self) -> Starlette:
        async def pages(request: Request) -> JSONResponse:
            self.requests.append(str(request.url.query))
            page = int(request.query_params.get("page", 1))
            if page > 1:
                return JSONResponse({"detail": "Invalid page."}, status_code=404)
            return JSONResponse({"data": self.items})

        async def offset(request: Request) -> JSONResponse:
            self.requests.append(str(request.url.query))
            start = int(request.query_params.get("offset", 0))
            return JSONResponse({"data": self.items[start : start + 100]})

        return Starlette(routes=[Route("/pages", pages), Route("/offset", offset)])


async def test_a_short_list_costs_one_request_more_and_a_404_past_it_ends_the_read():
    api = ShortListApi()
    with SandboxServer(api.app()) as server:
        pages = catalog(server.url, {"path": "/pages", "paginate": {"type": "page"}})
        assert sorted(await read_ids(pages)) == list(range(1, 8))
        assert len(api.requests) == 2 and "page=2" in api.requests[1]
        api.requests.clear()
        offsets = catalog(
            server.url, {"path": "/offset", "paginate": {"type": "offset", "total_path": None}}
        )
        assert sorted(await read_ids(offsets)) == list(range(1, 8))
        assert len(api.requests) == 2 and "offset=7" in api.requests[1]


async def test_a_404_to_a_page_that_is_not_a_probe_still_fails_the_read():
    api = ShortListApi()
    with SandboxServer(api.app()) as server:
        # Pages of 7 asked, 7 given: page 2 is a real next page, and its 404 is an error.
        cat = catalog(server.url, {"path": "/pages", "paginate": {"type": "page", "page_size": 7}})
        with pytest.raises(ApiError) as caught:
            await read_ids(cat)
    assert caught.value.status_code == 404


async def test_has_more_without_a_cursor_names_the_resource_and_the_contradiction():
    resource = {
        "path": "/stripe",
        "params": {"limit": 50},
        "paginate": {
            "type": "cursor",
            "cursor_field": "id",
            "cursor_param": "starting_after",
            "stop_when": {"path": "has_more", "equals": False},
        },
    }
    api = CappingApi()
    with SandboxServer(api.app()) as server, pytest.raises(PaginationError) as caught:
        await read_ids(catalog(server.url, resource))
    text = str(caught.value)
    assert text.startswith("api.items: the page says more records follow (`has_more` is true)")
    assert "the last record's `id` is missing: the page is empty" in text
