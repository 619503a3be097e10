"""Hostile review of the whole-read checks (`connectors/_totals.py`): lists that change
while they are read, totals that move, keys that cannot tell records apart.

Each case runs against a small real server on 127.0.0.1 whose list changes between two
pages the way a live API's does; each asserts that the change really happened (the server
counts its requests and its edits), so the test can fail.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import IncompleteReadError, PaginationError
from interlink.sandbox import SandboxServer


class ShiftingList:
    """30 records, newest first, served by position. After the first page is served, the
    first record is deleted (`delete`) or a new one is inserted at the front (`insert`).

    Routes, all of them positional:
    - `/link?page=&per_page=`: GitHub/json-server style, `Link` (next, last) and
      `X-Total-Count`;
    - `/drf?offset=&limit=`: Django REST framework's LimitOffsetPagination, `count` and a
      `next` URL that carries the offset;
    - `/cursor?after=&limit=`: keyset paging (`after` the last id), `X-Total-Count`.
    """

    def __init__(self, edit: str = "delete") -> None:
        self.items: list[dict[str, Any]] = [{"id": i, "name": f"n{i}"} for i in range(30, 0, -1)]
        self.edit = edit
        self.served = 0
        self.edited = 0

    def _after_serving(self) -> None:
        self.served += 1
        if self.served == 1:
            if self.edit == "delete":
                self.items.pop(0)
                self.edited += 1
            elif self.edit == "insert":
                self.items.insert(0, {"id": 31, "name": "new"})
                self.edited += 1
            elif self.edit == "delete-read":
                # The first record, already read: gone now, no position moves after it
                # for a keyset read.
                self.items.pop(0)
                self.edited += 1

    def app(self) -> Starlette:
        async def link(request: Request) -> JSONResponse:
            page = int(request.query_params.get("page", 1))
            size = int(request.query_params.get("per_page", 10))
            rows = self.items[(page - 1) * size : page * size]
            pages = max(1, -(-len(self.items) // size))
            base = str(request.url.replace(query=""))
            links = [f'<{base}?page={pages}&per_page={size}>; rel="last"']
            if page < pages:
                links.insert(0, f'<{base}?page={page + 1}&per_page={size}>; rel="next"')
            headers = {"Link": ", ".join(links), "X-Total-Count": str(len(self.items))}
            self._after_serving()
            return JSONResponse(rows, headers=headers)

        async def drf(request: Request) -> JSONResponse:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 10))
            rows = self.items[offset : offset + limit]
            base = str(request.url.replace(query=""))
            following = offset + limit
            body = {
                "count": len(self.items),
                "next": f"{base}?limit={limit}&offset={following}"
                if following < len(self.items)
                else None,
                "results": rows,
            }
            self._after_serving()
            return JSONResponse(body)

        async def cursor(request: Request) -> JSONResponse:
            after = request.query_params.get("after")
            limit = int(request.query_params.get("limit", 10))
            start = 0
            if after is not None:
                start = next(
                    (i for i, row in enumerate(self.items) if row["id"] < int(after)),
                    len(self.items),
                )
            rows = self.items[start : start + limit]
            more = start + limit < len(self.items)
            body = {"data": rows, "next": str(rows[-1]["id"]) if more and rows else None}
            headers = {"X-Total-Count": str(len(self.items))}
            self._after_serving()
            return JSONResponse(body, headers=headers)

        return Starlette(
            routes=[Route("/link", link), Route("/drf", drf), Route("/cursor", cursor)]
        )


def catalog(url: str, resource: dict[str, Any]) -> Catalog:
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": url, "retry": {"max_attempts": 1}}},
            "resources": {"api": {"items": resource}},
        }
    )
    return Catalog(config)


async def read_ids(cat: Catalog) -> list[Any]:
    ids: list[Any] = []
    async with cat:
        async for page in cat.resource("api.items").pages():
            ids.extend(record["id"] for record in page.records)
            assert page.number < 100, "the read does not stop"
    return ids


LINK = {"path": "/link", "params": {"page": 1}, "paginate": {"type": "link_header"}}
DRF = {
    "path": "/drf",
    "records": "results",
    "paginate": {"type": "next_url", "total_path": "count"},
}
CURSOR = {
    "path": "/cursor",
    "records": "data",
    "params": {"limit": 10},
    "paginate": {"type": "cursor", "cursor_path": "next", "cursor_param": "after"},
}


# -- a record deleted during a read by position: one record never arrives ----------------


@pytest.mark.parametrize("resource", [LINK, DRF], ids=["link-header", "drf-next-url"])
async def test_a_record_deleted_during_a_positional_link_read_is_an_incomplete_read(resource):
    """Page links that carry a page number or an offset are reads by position: the record
    deleted at the front moves record 20 onto page 1, already read, and it never arrives,
    although as many records arrived as the total now says."""
    api = ShiftingList("delete")
    with SandboxServer(api.app()) as server:
        try:
            ids = await read_ids(catalog(server.url, resource))
        except IncompleteReadError as exc:
            message = str(exc)
        else:
            missing = sorted(set(range(1, 31)) - set(ids))
            pytest.fail(f"the read passed as whole without records {missing}")
    assert api.edited == 1 and api.served >= 3
    assert "fell from 30 to 29" in message


async def test_a_record_deleted_during_a_keyset_read_is_not_an_alarm():
    """A cursor that names the last record read (`after=<id>`) does not move when earlier
    records go: nothing is skipped, and a total that fell is no reason to refuse."""
    api = ShiftingList("delete-read")
    with SandboxServer(api.app()) as server:
        ids = await read_ids(catalog(server.url, CURSOR))
    assert api.edited == 1
    assert sorted(ids) == list(range(1, 31))


@pytest.mark.parametrize("resource", [LINK, DRF], ids=["link-header", "drf-next-url"])
async def test_a_record_inserted_during_a_positional_link_read_is_an_incomplete_read(resource):
    """The insert pushes record 21 onto page 2 again; record 31 is never read."""
    api = ShiftingList("insert")
    with SandboxServer(api.app()) as server:
        with pytest.raises(IncompleteReadError) as info:
            await read_ids(catalog(server.url, resource))
    assert api.edited == 1
    assert "distinct `id`s (1 came again" in str(info.value)


@pytest.mark.parametrize("resource", [LINK, DRF, CURSOR], ids=["link", "drf", "cursor"])
async def test_a_list_that_holds_still_reads_whole(resource, caplog):
    api = ShiftingList("none")
    caplog.set_level(logging.WARNING, logger="interlink.connectors")
    with SandboxServer(api.app()) as server:
        ids = await read_ids(catalog(server.url, resource))
    assert sorted(ids) == list(range(1, 31))
    assert not [r for r in caplog.records if r.name == "interlink.connectors"]


class LoopingCursor:
    """`/loop?cursor=`: 5 records a page, and from page 3 on the same `next` cursor."""

    def __init__(self) -> None:
        self.served = 0

    def app(self) -> Starlette:
        async def loop(request: Request) -> JSONResponse:
            self.served += 1
            cursor = request.query_params.get("cursor")
            page = int(cursor[1:]) if cursor else 1
            rows = [{"id": page * 10 + i} for i in range(5)]
            return JSONResponse({"data": rows, "next": f"c{min(page + 1, 3)}"})

        return Starlette(routes=[Route("/loop", loop)])


async def test_a_cursor_sent_twice_stops_the_read_and_names_the_resource():
    api = LoopingCursor()
    resource = {
        "path": "/loop",
        "records": "data",
        "paginate": {"type": "cursor", "cursor_path": "next"},
    }
    with SandboxServer(api.app()) as server:
        with pytest.raises(PaginationError) as info:
            await read_ids(catalog(server.url, resource))
    assert api.served == 3
    assert str(info.value) == "api.items: the API sent cursor 'c3' twice; stopping a loop"
