"""Hostile review of the distinct-keys count of a whole read (`connectors/_totals.py`):
how many keys it holds, keys that look alike, and a key that is not unique.

`ReadWatch` is driven page by page as the reader drives it, with `X-Total-Count` as the
announced total, so each case runs in milliseconds; the reads against real servers are in
test_totals_shifts.py and test_repeated_records.py.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from interlink.connectors._page import Fetched, Record, RequestSpec
from interlink.connectors._paginator_base import BasePaginator
from interlink.connectors._totals import MAX_KEYS, ReadWatch
from interlink.errors import IncompleteReadError


class Pages(BasePaginator):
    """A next-link read whose pages the test hands over; no position parameters."""

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        return None


def watch_read(pages: list[list[Record]], total: int | None, **options: Any) -> ReadWatch:
    """Run `pages` through a ReadWatch as one whole read; `finish` at the last page."""
    watch = ReadWatch(Pages(), resource="api.items", key="id", **options)
    headers = {"x-total-count": str(total)} if total is not None else {}
    for number, records in enumerate(pages, start=1):
        watch.page(number, RequestSpec(f"/items?cursor=c{number}"), headers, records)
        watch.note_totals()
    watch.finish(len(pages))
    return watch


def paged(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def test_past_max_keys_the_count_stands_aside_and_lets_go_of_its_keys():
    """1,000,001 distinct keys: no alarm, and the keys are let go of at the cap (the read's
    memory stays what MAX_KEYS allows, not what the read holds)."""
    size = 10_000
    count = MAX_KEYS + 1
    tracemalloc.start()
    try:
        watch = ReadWatch(Pages(), key="id")
        headers = {"x-total-count": str(count)}
        for number, start in enumerate(range(0, count, size), start=1):
            records = [{"id": i} for i in range(start, min(start + size, count))]
            watch.page(number, RequestSpec(f"/items?cursor=c{number}"), headers, records)
            watch.note_totals()
            if number == 1:
                assert watch._keys is not None, "the count is on at the start"
        watch.finish(number)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert watch.received == count
    assert watch._keys is None, "the keys are let go of past MAX_KEYS"
    # 1M int keys in a set are about 66 MB (measured); the cap bounds the read below 160 MB.
    assert peak < 160_000_000, f"{peak:,} bytes at the peak"


def test_a_repeat_before_max_keys_still_refuses_a_read_under_it():
    records = [{"id": i, "n": i} for i in range(100)]
    pages = paged(records, 10)
    pages[5] = [pages[4][-1], *pages[5][:-1]]  # one pushed onto the next page, 59 lost
    with pytest.raises(IncompleteReadError, match="99 distinct `id`s"):
        watch_read(pages, 100)


def test_keys_that_differ_only_in_spaces_or_case_are_different_records():
    """`"A1"`, `"a1"` and `" a1"` are three records to the API and to the destination's
    text key: three distinct keys, no alarm."""
    records = [{"id": key} for key in ("A1", "a1", " a1", "a1 ", "B2")]
    watch = watch_read(paged(records, 2), 5)
    assert watch.repeated == 0


def test_an_int_and_a_numeric_string_key_are_not_taken_for_one_record():
    """1 and "1" (an API that sends ids as numbers, and as strings in a later page's
    records): two keys to a set, so never a false repeat; the count does not refuse."""
    records = [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}, {"id": "1", "n": "c"}]
    watch = watch_read(paged(records, 1), 3)
    assert watch.repeated == 0


def test_a_key_that_is_not_unique_far_apart_is_refused_with_the_remedy():
    """Order lines numbered per order, 25 lines an order, 10 a page: line `id` 1 comes
    again two pages later as another record. Kept as a refusal (see the report: a pipeline
    keyed by this `id` would fold these records into one row); the message names the fix."""
    records = [{"order": o, "id": line} for o in (1, 2) for line in range(1, 26)]
    with pytest.raises(IncompleteReadError) as info:
        watch_read(paged(records, 10), 50)
    message = str(info.value)
    assert message.startswith("api.items: incomplete read: 50 records arrived but only 25")
    assert "set the resource's primary_key" in message


def test_a_key_that_is_not_unique_on_the_next_page_stands_aside():
    records = [{"order": o, "id": line} for o in range(1, 6) for line in range(1, 6)]
    watch = watch_read(paged(records, 10), 25)
    assert watch._keys is None


async def test_a_page_served_again_with_a_record_edited_meanwhile_is_an_incomplete_read():
    """An API that ignores `offset` serves page 1 again, one record edited in between: the
    repeat is not byte for byte (so the page-repeat check passes it), and the edited
    record is the same key on other content. That must not pass for a key that is not
    unique (which would stop the distinct count and let a 26-record list end at 25)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from interlink.config import InterlinkConfig
    from interlink.connectors import Catalog
    from interlink.errors import IncompleteReadError, PaginationError
    from interlink.sandbox import SandboxServer

    rows = [{"id": n, "name": f"item {n}"} for n in range(1, 27)]
    served = []

    async def items(request: Request) -> JSONResponse:
        served.append(request.query_params.get("offset"))
        if len(served) > 1:
            rows[0] = {"id": 1, "name": "edited 1"}
        return JSONResponse({"data": rows[:25], "total": len(rows)})  # offset ignored

    with SandboxServer(Starlette(routes=[Route("/items", items)])) as server:
        config = InterlinkConfig.model_validate(
            {
                "connections": {"api": {"base_url": server.url}},
                "resources": {
                    "api": {
                        "items": {
                            "path": "/items",
                            "records": "data",
                            "paginate": {"type": "offset", "page_size": 25, "overlap": 0},
                        }
                    }
                },
            }
        )
        got: list[int] = []
        with pytest.raises((IncompleteReadError, PaginationError)) as caught:
            async with Catalog(config) as catalog:
                async for page in catalog.resource("api.items").pages():
                    got.extend(r["id"] for r in page.records)
    assert served[:2] == ["0", "25"], "the second page was asked for and served page 1 again"
    assert 26 not in got
    assert "api.items" in str(caught.value)
