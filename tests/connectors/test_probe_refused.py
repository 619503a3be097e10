"""A 400 to the probe after a short first page: the end of the list, or not?

A first page shorter than asked, with no total, is either a short list or a server that
caps the page size without saying so; the reader asks for one page more (the probe). A
404 or 416 to it is how APIs refuse a page past the last one. A 400 may be that too, or a
refusal for another reason while records go on: ending the read there would pass a short
table as whole. So a 400 is checked with one more request, the window that starts at the
last record read: one record back means the list ended there; more means it goes on, and
the read stops with the reason; a refusal again means interlink cannot tell, and stops.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.connectors import Catalog
from interlink.errors import ApiError, PaginationError
from interlink.sandbox import SandboxServer

from .test_totals_capped import catalog

CAP = 100


class StrictApi:
    """`records` records, at most 100 a page whatever is asked, no total.

    `/offset` refuses (400) an offset that is not a multiple of the limit asked, as some
    APIs do; `/pages` counts its pages by the `per_page` asked (not by the 100 it serves)
    and refuses (400) a page past that count; `/past` refuses (400) any offset at or past
    the end of the list, and serves a window that starts inside it; `/capped` serves pages
    of at most 100 and refuses (400) one past the last; `/locked` is `/past` whose
    requests from an offset other than 0 need credentials it was not given (401); `/stuck`
    serves the first 100 and refuses (400) any other offset."""

    def __init__(self, records: int) -> None:
        self.items = [{"id": i} for i in range(1, records + 1)]
        self.queries: list[str] = []

    def app(self) -> Starlette:
        def bad(message: str) -> JSONResponse:
            return JSONResponse({"error": message}, status_code=400)

        async def offset(request: Request) -> JSONResponse:
            self.queries.append(str(request.url.query))
            start = int(request.query_params["offset"])
            limit = int(request.query_params["limit"])
            if start % limit:
                return bad("offset must be a multiple of limit")
            return JSONResponse({"data": self.items[start : start + min(limit, CAP)]})

        async def pages(request: Request) -> JSONResponse:
            self.queries.append(str(request.url.query))
            page = int(request.query_params["page"])
            per_page = int(request.query_params["per_page"])
            if page > 1 and (page - 1) * per_page >= len(self.items):
                return bad("page out of range")
            size = min(per_page, CAP)
            start = (page - 1) * per_page
            return JSONResponse({"data": self.items[start : start + size]})

        async def past(request: Request) -> JSONResponse:
            self.queries.append(str(request.url.query))
            start = int(request.query_params["offset"])
            if start >= len(self.items):
                return bad("offset out of range")
            limit = min(int(request.query_params["limit"]), CAP)
            return JSONResponse({"data": self.items[start : start + limit]})

        async def capped(request: Request) -> JSONResponse:
            self.queries.append(str(request.url.query))
            page = int(request.query_params["page"])
            size = min(int(request.query_params["per_page"]), CAP)
            start = (page - 1) * size
            if start >= len(self.items):
                return bad("page out of range")
            return JSONResponse({"data": self.items[start : start + size]})

        async def stuck(request: Request) -> JSONResponse:
            self.queries.append(str(request.url.query))
            if int(request.query_params["offset"]):
                return bad("bad offset")
            return JSONResponse({"data": self.items[:CAP]})

        async def locked(request: Request) -> JSONResponse:
            self.queries.append(str(request.url.query))
            start = int(request.query_params["offset"])
            if start >= len(self.items):
                return bad("offset out of range")
            if start:
                return JSONResponse({"error": "log in again"}, status_code=401)
            return JSONResponse({"data": self.items[: int(request.query_params["limit"])]})

        return Starlette(
            routes=[
                Route("/offset", offset),
                Route("/pages", pages),
                Route("/past", past),
                Route("/capped", capped),
                Route("/locked", locked),
                Route("/stuck", stuck),
            ]
        )


async def _ids(cat: Catalog) -> list[int]:
    ids: list[int] = []
    async with cat:
        async for page in cat.resource("api.items").pages():
            ids.extend(record["id"] for record in page.records)
            assert page.number < 50, "the read does not stop"
    return ids


OFFSET = {"path": "/offset", "paginate": {"type": "offset", "page_size": 1000, "total_path": None}}
PAGES = {"path": "/pages", "paginate": {"type": "page", "page_size": 1000}}
PAST = {"path": "/past", "paginate": {"type": "offset", "page_size": 1000, "total_path": None}}


async def test_a_400_to_the_offset_probe_while_records_go_on_stops_the_read() -> None:
    api = StrictApi(250)
    with SandboxServer(api.app()) as server, pytest.raises(PaginationError) as caught:
        await _ids(catalog(server.url, OFFSET))
    text = str(caught.value)
    assert text.startswith("api.items: "), text
    assert "-> 400" in text and "offset must be a multiple of limit" in text, text
    assert "the list goes on: 99 records" in text, text
    # The check asks from the last record read with a limit its offset is a multiple of.
    assert api.queries[1:] == ["offset=100&limit=1000", "offset=99&limit=99"], api.queries


async def test_a_check_refused_too_stops_the_read_saying_it_could_not_tell() -> None:
    """An API that refuses every offset but 0 refuses the check too: the read stops."""
    api = StrictApi(250)
    resource = {"path": "/stuck", "paginate": {"type": "offset", "page_size": 1000}}
    with SandboxServer(api.app()) as server, pytest.raises(PaginationError) as caught:
        await _ids(catalog(server.url, resource))
    text = str(caught.value)
    assert "(HTTP 400): interlink could not tell whether the list ended" in text, text
    assert isinstance(caught.value.__cause__, ApiError)
    assert api.queries[1:] == ["offset=100&limit=1000", "offset=99&limit=99"], api.queries


async def test_a_check_answered_with_something_else_than_a_refusal_goes_up_as_it_is() -> None:
    """A 401 (or a 5xx, a 429, a lost connection) to the check says nothing about the list:
    it is the error it is, and a job retries it as it would on any page."""
    api = StrictApi(60)
    resource = {"path": "/locked", "paginate": {"type": "offset", "page_size": 1000}}
    with SandboxServer(api.app()) as server, pytest.raises(ApiError) as caught:
        await _ids(catalog(server.url, resource))
    assert not isinstance(caught.value, PaginationError), caught.value
    assert caught.value.status_code == 401
    assert api.queries[1:] == ["offset=60&limit=1000", "offset=59&limit=59"], api.queries


async def test_a_400_to_the_page_probe_while_records_go_on_stops_the_read() -> None:
    api = StrictApi(250)
    with SandboxServer(api.app()) as server, pytest.raises(PaginationError) as caught:
        await _ids(catalog(server.url, PAGES))
    text = str(caught.value)
    assert "page out of range" in text and "the list goes on: 99 records" in text, text
    # The check: page 2 of pages of 99 starts at the last record read, and has 99.
    assert any("page=2" in q and "per_page=99" in q for q in api.queries), api.queries


@pytest.mark.parametrize("resource", [PAST, PAGES, OFFSET], ids=["offset", "page", "multiple"])
async def test_a_400_past_the_end_of_a_short_list_still_ends_the_read(
    resource: dict[str, Any],
) -> None:
    api = StrictApi(60)
    with SandboxServer(api.app()) as server:
        ids = await _ids(catalog(server.url, resource))
    assert ids == list(range(1, 61))
    # The first page, the probe (refused) and the check (the last record alone).
    assert len(api.queries) == 3, api.queries


async def test_a_capped_list_whose_probe_is_a_real_page_reads_everything() -> None:
    """The server caps at 100 and refuses past the end: the probe is a real page (no 400),
    and the read goes on to a last page shorter than the others."""
    api = StrictApi(250)
    with SandboxServer(api.app()) as server:
        ids = await _ids(catalog(server.url, PAST))
    assert ids == list(range(1, 251))


async def test_a_read_resumed_on_a_later_page_takes_a_400_past_its_short_page_as_the_end() -> None:
    """Resumed at page 3 of pages of 100 (the API's cap), the last page is short and the
    page after it refused: no check can be sized from a resumed read's pages, so the 400
    ends the list there, as it did before the check existed."""
    api = StrictApi(250)
    resource = {"path": "/capped", "paginate": {"type": "page", "page_size": 100}}
    ids: list[int] = []
    with SandboxServer(api.app()) as server:
        cat = catalog(server.url, resource)
        async with cat:
            async for page in cat.resource("api.items").pages(resume={"page": 3, "received": 200}):
                ids.extend(record["id"] for record in page.records)
    assert ids == list(range(201, 251))
    assert api.queries == ["page=3&per_page=100", "page=4&per_page=100"], api.queries


def test_the_offset_check_takes_a_limit_its_offset_is_a_multiple_of() -> None:
    from interlink.connectors._position_paginators import _window

    assert [_window(n, 100) for n in (2, 59, 99, 249, 250, 97 * 2)] == [2, 59, 99, 83, 50, 97]
    assert _window(101, 100) == 100  # a prime past the page size: none fits
