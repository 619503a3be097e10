"""A record that comes again on a later page: the counts agree, the table would be short.

An offset-paged list that changes while it is read pushes records onto the next page: one
inserted at the front makes the last record of page 1 come again on page 2, and the new
record is never read, although as many records arrived as the total says. Against a real
server on 127.0.0.1 whose list grows between two pages (connectors/_totals.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
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


class GrowingList:
    """`GET /items?offset=&limit=` of 30 records; after the first page is served, one
    record is added at the front when `grow` is set. `total` says how many there are now
    (or nothing with `with_total=False`)."""

    def __init__(self, *, grow: bool, with_total: bool = True) -> None:
        self.items: list[dict[str, Any]] = [{"id": i, "name": f"n{i}"} for i in range(30, 0, -1)]
        self.grow = grow
        self.with_total = with_total
        self.served = 0

    def app(self) -> Starlette:
        async def items(request: Request) -> JSONResponse:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 10))
            page = self.items[offset : offset + limit]
            body: dict[str, Any] = {"data": page}
            if self.with_total:
                body["total"] = len(self.items)
            self.served += 1
            if self.grow and self.served == 1:
                self.items.insert(0, {"id": 31, "name": "new"})  # newest first
            return JSONResponse(body)

        return Starlette(routes=[Route("/items", items)])


def catalog(url: str, **resource: Any) -> Catalog:
    # No records asked back: these are the checks an `overlap: 0` read (or a page-number
    # one) relies on; test_overlap.py has the read that asks back.
    paginate: dict[str, Any] = {"type": "offset", "page_size": 10, "overlap": 0}
    if resource.pop("total", True):
        paginate["total_path"] = "total"
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": url}},
            "resources": {
                "api": {
                    "items": {"path": "/items", "records": "data", "paginate": paginate, **resource}
                }
            },
        }
    )
    return Catalog(config)


@pytest.fixture
def growing() -> Iterator[tuple[GrowingList, str]]:
    api = GrowingList(grow=True)
    with SandboxServer(api.app()) as server:
        yield api, server.url


async def read_all(cat: Catalog, **kwargs: Any) -> list[int]:
    ids: list[int] = []
    async with cat:
        async for page in cat.resource("api.items").pages(**kwargs):
            ids.extend(record["id"] for record in page.records)
    return ids


async def test_a_record_pushed_onto_the_next_page_is_an_incomplete_read(growing):
    api, url = growing
    with pytest.raises(IncompleteReadError) as info:
        await read_all(catalog(url))
    assert api.served == 4  # 31 records now, 10 a page: the read did go to its end
    message = str(info.value)
    assert "31 records arrived but only 30 distinct `id`s (1 came again" in message
    assert "the `total` field says 31" in message
    assert info.value.expected == 31 and info.value.got == 30


async def test_on_total_mismatch_warn_reads_on_and_says_so(growing, caplog):
    api, url = growing
    caplog.set_level(logging.WARNING, logger="interlink.connectors")
    ids = await read_all(catalog(url, on_total_mismatch="warn"))
    assert len(ids) == 31 and len(set(ids)) == 30 and 31 not in ids
    assert any("came again on later pages" in r.getMessage() for r in caplog.records)


async def test_without_a_total_a_repeat_is_a_warning(caplog):
    api = GrowingList(grow=True, with_total=False)
    caplog.set_level(logging.WARNING, logger="interlink.connectors")
    with SandboxServer(api.app()) as server:
        ids = await read_all(catalog(server.url, total=False))
    assert len(ids) == 31
    [line] = [r.getMessage() for r in caplog.records if "came again" in r.getMessage()]
    assert "1 records came again on later pages (the same `id`)" in line


async def test_a_list_that_holds_still_reads_whole_without_a_word(caplog):
    api = GrowingList(grow=False)
    caplog.set_level(logging.WARNING, logger="interlink.connectors")
    with SandboxServer(api.app()) as server:
        ids = await read_all(catalog(server.url))
    assert sorted(ids) == list(range(1, 31))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_key_the_records_lack_turns_the_count_off(growing):
    """`primary_key: sku` that no record has: the distinct count stands aside (the sink
    names the missing key when it writes); the totals alone decide."""
    api, url = growing
    ids = await read_all(catalog(url, primary_key="sku"))
    assert len(ids) == 31  # the counts agree; nothing to compare distinct records with


class StaticList:
    """`GET /items?offset=&limit=` over a fixed list, with its `total`: nothing moves."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def app(self) -> Starlette:
        async def items(request: Request) -> JSONResponse:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 10))
            body = {"data": self.items[offset : offset + limit], "total": len(self.items)}
            return JSONResponse(body)

        return Starlette(routes=[Route("/items", items)])


async def read_static(items: list[dict[str, Any]], **resource: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with SandboxServer(StaticList(items).app()) as server:
        cat = catalog(server.url, **resource)
        async with cat:
            async for page in cat.resource("api.items").pages():
                records.extend(page.records)
    return records


async def test_an_id_that_is_not_unique_is_no_repeat():
    """Order lines whose `id` is their position in the order (the pipeline keys them by
    `order_id` and `id`): the default `primary_key: id` repeats on every page, each time a
    different record. A list that holds still is whole, not short."""
    items = [
        {"order_id": order, "id": line, "sku": f"s{order}-{line}"}
        for order in range(1, 11)
        for line in (1, 2, 3)
    ]
    records = await read_static(items)
    assert records == items


async def test_a_null_or_boolean_key_turns_the_count_off():
    """Records without a key value (`id: null`), and a key that is 1 on one record and
    true on another (which a set holds as one): not repeats of each other."""
    nulls = [{"id": None, "name": f"n{i}"} for i in range(25)]
    assert len(await read_static(nulls)) == 25
    mixed = [{"id": i, "name": f"n{i}"} for i in range(1, 25)] + [{"id": True, "name": "t"}]
    assert len(await read_static(mixed)) == 25
