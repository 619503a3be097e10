"""An offset read asks each page a few records back and checks them (`_overlap`).

Against a real server on 127.0.0.1 whose list changes between two requests the way a
live API's does. The case that motivated it: a record removed from before the offset and
one created at the end between two pages. The later records move back by one, so the
record at the boundary lands on the page already read; the total does not fall, no key
comes twice, and the read used to end "complete" one record short (a full read with
`deletes:` would then have deleted its row). Each test asserts that its change happened.
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
from interlink.connectors._overlap import OVERLAP_KEYS
from interlink.errors import IncompleteReadError
from interlink.sandbox import SandboxServer


class ChangingList:
    """`GET /items?offset=&limit=`: 60 records sorted by id, `{"data", "total"}`.

    `change(n)` runs after the n-th request is served; `rounding` serves the page the
    offset falls in (offset // limit), as an API that takes pages, not offsets."""

    def __init__(self, *, total: bool = True, rounding: bool = False) -> None:
        self.items: list[dict[str, Any]] = [{"id": i, "name": f"n{i}"} for i in range(1, 61)]
        self.total = total
        self.rounding = rounding
        self.served = 0
        self.offsets: list[int] = []
        self.changes: dict[int, Any] = {}
        self.changed = 0

    def app(self) -> Starlette:
        async def items(request: Request) -> JSONResponse:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 10))
            self.offsets.append(offset)
            if self.rounding:
                offset = offset // limit * limit
            body: dict[str, Any] = {"data": self.items[offset : offset + limit]}
            if self.total:
                body["total"] = len(self.items)
            self.served += 1
            change = self.changes.pop(self.served, None)
            if change is not None:
                change()
                self.changed += 1
            return JSONResponse(body)

        return Starlette(routes=[Route("/items", items)])

    def remove(self, item_id: int) -> None:
        self.items = [r for r in self.items if r["id"] != item_id]

    def create(self, item_id: int) -> None:
        self.items.append({"id": item_id, "name": f"n{item_id}"})


def items_config(
    url: str, concurrency: int = 1, resource: dict[str, Any] | None = None, **paginate: Any
) -> dict[str, Any]:
    """A config reading `api.items` from a ChangingList at `url` by offset, pages of 10."""
    return {
        "connections": {"api": {"base_url": url, "retry": {"max_attempts": 1}}},
        "resources": {
            "api": {
                "items": {
                    "path": "/items",
                    "records": "data",
                    "paginate": {"type": "offset", "page_size": 10, **paginate},
                    "concurrency": concurrency,
                    **(resource or {}),
                }
            }
        },
    }


def _catalog(url: str, concurrency: int = 1, **paginate: Any) -> Catalog:
    return Catalog(InterlinkConfig.model_validate(items_config(url, concurrency, **paginate)))


async def _read(url: str, concurrency: int = 1, **paginate: Any) -> list[int]:
    async with _catalog(url, concurrency, **paginate) as catalog:
        return [r["id"] async for r in catalog.resource("api.items").records()]


def _churn(source: ChangingList) -> None:
    """Three records of page 1 removed, three created at the end: the total stays 60."""
    for item_id in (2, 3, 4):
        source.remove(item_id)
    for item_id in (61, 62, 63):
        source.create(item_id)


async def test_records_removed_and_as_many_created_between_pages_stop_the_read() -> None:
    source = ChangingList()
    source.changes = {1: lambda: _churn(source)}
    with SandboxServer(source.app()) as server:
        with pytest.raises(IncompleteReadError, match="no longer began with the records"):
            await _read(server.url, overlap=2, concurrency=1)
    assert source.changed == 1


async def test_without_the_overlap_the_same_read_ends_short_and_says_nothing() -> None:
    """The fault this guards against, shown: records 11-13 never arrive, yet the read
    ends as whole (60 records, as the total says)."""
    source = ChangingList()
    source.changes = {1: lambda: _churn(source)}
    with SandboxServer(source.app()) as server:
        ids = await _read(server.url, overlap=0, concurrency=1)
    assert source.changed == 1
    assert not {11, 12, 13} & set(ids) and len(ids) == 60 and {61, 62, 63} <= set(ids)


async def test_removals_fewer_than_the_records_asked_back_lose_nothing() -> None:
    """Records 3 and 4 removed after page 1 (no total to fall): asked 3 back, page 2
    begins at record 9 of page 1, and every record that is left arrives once."""
    source = ChangingList(total=False)
    source.changes = {1: lambda: (source.remove(3), source.remove(4))}
    with SandboxServer(source.app()) as server:
        ids = await _read(server.url, overlap=3, total_path=None)
    assert source.changed == 1
    assert ids == list(range(1, 61))  # 3 and 4 arrived on page 1, before they went
    assert source.offsets[:3] == [0, 7, 14]


async def test_records_added_before_the_offset_come_once() -> None:
    """Two records added at the front after page 1: page 1's last records come again on
    page 2 and are dropped; nothing read twice, nothing missed of what was there."""
    source = ChangingList(total=False)

    def add_two() -> None:
        source.items[:0] = [{"id": 100, "name": "new"}, {"id": 101, "name": "new"}]

    source.changes = {1: add_two}
    with SandboxServer(source.app()) as server:
        ids = await _read(server.url, overlap=3, total_path=None)
    assert source.changed == 1
    assert ids == list(range(1, 61))


async def test_a_default_read_asks_back_and_reads_every_record_once() -> None:
    source = ChangingList()
    with SandboxServer(source.app()) as server:
        ids = await _read(server.url, concurrency=4)
    assert ids == list(range(1, 61))
    assert sorted(source.offsets) == [0, 9, 18, 27, 36, 45, 54]  # 1 of a page of 10


async def test_keys_that_repeat_are_matched_by_content() -> None:
    """Order lines numbered 1-3 within each order: `id` repeats from order to order, so
    the records asked back are told apart by their whole content."""
    source = ChangingList()
    source.items = [
        {"id": line, "order": order, "sku": f"s{order}-{line}"}
        for order in range(1, 21)
        for line in (1, 2, 3)
    ]
    with SandboxServer(source.app()) as server:
        async with _catalog(server.url, overlap=2) as catalog:
            got = [(r["order"], r["id"]) async for r in catalog.resource("api.items").records()]
    assert got == [(order, line) for order in range(1, 21) for line in (1, 2, 3)]


async def test_an_api_that_rounds_the_offset_to_a_page_stops_the_read() -> None:
    """Page 2 asked at offset 8 comes back as records 1-10 again: not where page 1
    ended, so the read stops, and says how to read such an API."""
    source = ChangingList(rounding=True)
    with SandboxServer(source.app()) as server:
        with pytest.raises(IncompleteReadError, match="overlap: 0"):
            await _read(server.url, overlap=2)
    assert source.offsets[:2] == [0, 8]


async def test_a_resumed_read_checks_its_first_page_against_the_checkpoint() -> None:
    """The checkpoint keeps the last records' keys; records removed while the read was
    interrupted are found out by the first page after the resume."""
    source = ChangingList()
    with SandboxServer(source.app()) as server:
        async with _catalog(server.url, overlap=2) as catalog:
            resource = catalog.resource("api.items")
            pages = resource.pages()
            first = await anext(pages)
            await pages.aclose()
            checkpoint = first.checkpoint
            assert checkpoint is not None and checkpoint[OVERLAP_KEYS]["ids"][-1] == 10
            # Meanwhile, records 2, 3 and 4 go and 61 comes: 11 is now at offset 7.
            source.remove(2), source.remove(3), source.remove(4), source.create(61)
            source.changed += 1
            with pytest.raises(IncompleteReadError, match="no longer began"):
                async for _ in resource.pages(resume=checkpoint):
                    pass
    assert source.changed == 1 and source.offsets[1] == 8


async def test_keys_distinct_on_one_page_but_not_in_the_list_lose_nothing() -> None:
    """Review finding: lines numbered 1-40 within each order look unique over a page's
    last 30 records; the page after must still be matched as a run, not by a key found
    anywhere (that dropped a whole order's lines)."""
    source = ChangingList()
    source.items = [{"id": line, "order": order} for order in range(1, 11) for line in range(1, 41)]
    with SandboxServer(source.app()) as server:
        async with _catalog(server.url, page_size=100) as catalog:
            got = [(r["order"], r["id"]) async for r in catalog.resource("api.items").records()]
    assert got == [(order, line) for order in range(1, 11) for line in range(1, 41)]


async def test_records_read_and_moved_to_the_end_stop_the_read() -> None:
    """Review finding: records edited in a list sorted by `updated_at` move to its end;
    those behind them move back past the boundary (18-21 here) and are lost unless the
    read stops."""
    source = ChangingList(total=False)
    source.items = source.items[:30]

    def move() -> None:
        moved = [r for r in source.items if 12 <= r["id"] <= 15]
        source.items = [r for r in source.items if not 12 <= r["id"] <= 15] + moved

    source.changes = {2: move}
    with SandboxServer(source.app()) as server:
        with pytest.raises(IncompleteReadError, match="no longer began"):
            await _read(server.url, overlap=3, total_path=None)
    assert source.changed == 1


async def test_a_read_from_a_later_start_with_a_total_is_whole() -> None:
    """Review finding: the distinct-keys check, ungated, failed every read with `start`."""
    source = ChangingList()
    with SandboxServer(source.app()) as server:
        ids = await _read(server.url, start=30)
    assert ids == list(range(31, 61))


async def test_warned_reads_that_lose_sight_keep_no_record_twice() -> None:
    """Compared by content (no key), the last record of page 1 edited before page 2:
    the run is not found and the read goes on marked incomplete, dropping the records
    asked back as a read without them would (no duplicates appended)."""
    source = ChangingList(total=False)
    source.items = [{"sku": f"s{i}", "qty": i} for i in range(1, 31)]
    source.changes = {1: lambda: source.items.__setitem__(9, {"sku": "s10", "qty": 999})}
    with SandboxServer(source.app()) as server:
        config = items_config(
            server.url,
            resource={"on_total_mismatch": "warn"},
            overlap=2,
            total_path=None,
        )
        async with Catalog(InterlinkConfig.model_validate(config)) as catalog:
            pages = [p async for p in catalog.resource("api.items").pages()]
    skus = [r["sku"] for p in pages for r in p.records]
    assert source.changed == 1
    assert len(skus) == len(set(skus)) == 30
    assert not pages[-1].complete


def test_an_overlap_past_what_a_page_keeps_is_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        InterlinkConfig.model_validate(
            {
                "connections": {"api": {"base_url": "http://127.0.0.1:9"}},
                "resources": {
                    "api": {"items": {"path": "/i", "paginate": {"type": "offset", "overlap": 50}}}
                },
            }
        )
