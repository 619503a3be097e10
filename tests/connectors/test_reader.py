"""The shared read loop through RestResource over a fake API (httpx.MockTransport)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from interlink.errors import ApiError, IncompleteReadError

from .conftest import ItemsApi, make_catalog

# Pages at offsets 0, 10, 20...: no records asked back (test_overlap.py has those).
OFFSET = {
    "path": "/items",
    "records": "data",
    "paginate": {"type": "offset", "page_size": 10, "overlap": 0},
}


async def read_ids(resource, **kwargs) -> tuple[list[int], list]:
    ids, pages = [], []
    async for page in resource.pages(**kwargs):
        pages.append(page)
        ids.extend(r["id"] for r in page.records)
    return ids, pages


@pytest.mark.parametrize("n", [0, 1, 9, 10, 11, 95])
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_offset_reads_each_record_once_in_order(n, concurrency):
    api = ItemsApi(n, delay=0.001)
    async with make_catalog({"items": {**OFFSET, "concurrency": concurrency}}, api) as catalog:
        ids, pages = await read_ids(catalog.resource("api.items"))
    assert ids == list(range(1, n + 1))
    assert len(api.requests) == max(1, -(-n // 10)), "no request beyond the last page"
    assert pages[-1].done and pages[-1].checkpoint is None
    assert all(not p.done for p in pages[:-1])
    assert api.max_in_flight <= concurrency


async def test_concurrency_overlaps_requests():
    api = ItemsApi(200, delay=0.01)
    async with make_catalog({"items": {**OFFSET, "concurrency": 5}}, api) as catalog:
        ids, _ = await read_ids(catalog.resource("api.items"))
    assert ids == list(range(1, 201))
    assert api.max_in_flight == 5


async def test_the_next_page_is_requested_while_the_caller_holds_this_one():
    api = ItemsApi(30)
    async with make_catalog({"items": {**OFFSET, "concurrency": 1}}, api) as catalog:
        seen = []
        async for _page in catalog.resource("api.items").pages():
            await asyncio.sleep(0.01)  # the caller "writes" the page
            seen.append(len(api.requests))
    # While page 1 was held, page 2 had already been requested, and so on.
    assert seen == [2, 3, 3]


async def test_limit_stops_early_and_cancels_prefetch():
    api = ItemsApi(100)
    async with make_catalog({"items": {**OFFSET, "concurrency": 4}}, api) as catalog:
        ids, pages = await read_ids(catalog.resource("api.items"), limit=25)
    assert ids == list(range(1, 26))
    assert pages[-1].done


async def test_resume_from_a_checkpoint_reads_the_rest_exactly():
    api = ItemsApi(45)
    async with make_catalog({"items": OFFSET}, api) as catalog:
        resource = catalog.resource("api.items")
        first = []
        async for page in resource.pages():
            first.extend(r["id"] for r in page.records)
            checkpoint = page.checkpoint
            if len(first) == 20:
                break
        rest, _ = await read_ids(resource, resume=checkpoint)
    assert checkpoint == {"offset": 20, "received": 20, "announced": 45}
    assert first + rest == list(range(1, 46))


async def test_an_empty_resume_checkpoint_reads_from_the_start():
    """`{}` is what a child read stores before its first parent page is done (issue 10)."""
    api = ItemsApi(25)
    async with make_catalog({"items": OFFSET}, api) as catalog:
        ids, pages = await read_ids(catalog.resource("api.items"), resume={})
    assert ids == list(range(1, 26)) and pages[-1].complete
    assert api.requests[0].url.params["offset"] == "0"


async def test_a_plan_that_no_longer_matches_falls_back_to_one_page_at_a_time():
    api = ItemsApi(100)
    original = api.route

    def shrinking(request: httpx.Request) -> httpx.Response:
        # After the first page, 50 items disappear: planned pages past them come back
        # empty; the read stops without duplicates, and says it cannot be complete (issue
        # 10: records removed during an offset read shift others past the pages read).
        if len(api.requests) == 2:
            del api.items[50:]
        return original(request)

    api.route = shrinking  # type: ignore[method-assign]
    seen: list[int] = []
    async with make_catalog({"items": {**OFFSET, "concurrency": 4}}, api) as catalog:
        with pytest.raises(IncompleteReadError, match="fell from 100 to 50"):
            async for page in catalog.resource("api.items").pages():
                seen.extend(r["id"] for r in page.records)
    assert seen == sorted(set(seen))
    assert seen == list(range(1, len(seen) + 1)) and len(seen) >= 40


async def test_error_envelope_in_a_200_raises_api_error():
    api = ItemsApi(1)
    async with make_catalog({"bad": {"path": "/envelope", "records": "data"}}, api) as catalog:
        with pytest.raises(ApiError, match="export disabled") as caught:
            await read_ids(catalog.resource("api.bad"))
    assert caught.value.status_code == 200


async def test_configured_error_envelope():
    def handler(request):
        return httpx.Response(200, json={"ok": 0, "why": "quota exhausted", "rows": []})

    spec = {
        "path": "/x",
        "records": "rows",
        "error": {"path": "ok", "value": 0, "message_path": "why"},
    }
    async with make_catalog({"x": spec}, handler) as catalog:
        with pytest.raises(ApiError, match="quota exhausted"):
            await read_ids(catalog.resource("api.x"))


async def test_missing_records_path_names_what_is_there():
    api = ItemsApi(1)
    async with make_catalog({"odd": {"path": "/odd", "records": "data.items"}}, api) as catalog:
        with pytest.raises(ApiError, match="no records at 'data.items'.*result"):
            await read_ids(catalog.resource("api.odd"))


async def test_incremental_sends_since_and_reports_the_highest_value():
    api = ItemsApi(60)
    spec = {**OFFSET, "incremental": {"field": "updated_at", "param": "updated_since"}}
    async with make_catalog({"items": spec}, api) as catalog:
        resource = catalog.resource("api.items")
        ids, pages = await read_ids(resource)
        assert len(ids) == 60
        assert pages[-1].cursor == "2026-01-28T00:00:00Z"
        assert resource.last_cursor == "2026-01-28T00:00:00Z"
        changed, _ = await read_ids(resource, since="2026-01-27T00:00:00Z")
    assert api.requests[-1].url.params["updated_since"] == "2026-01-27T00:00:00Z"
    assert sorted(changed) == sorted(i for i in range(1, 61) if i % 28 in (26, 27))


async def test_incremental_without_a_server_filter_filters_on_the_client():
    api = ItemsApi(30)
    spec = {**OFFSET, "incremental": {"field": "updated_at"}}
    async with make_catalog({"items": spec}, api) as catalog:
        changed, pages = await read_ids(catalog.resource("api.items"), since="2026-01-28T00:00:00Z")
    assert changed == [27]
    assert "updated_since" not in api.requests[0].url.params
    assert pages[-1].cursor == "2026-01-28T00:00:00Z"


async def test_single_object_body_and_null_records():
    def handler(request):
        if request.url.path == "/one":
            return httpx.Response(200, json={"data": {"id": 7}})
        return httpx.Response(200, json={"data": None})

    async with make_catalog({"one": {"path": "/one"}, "none": {"path": "/none"}}, handler) as c:
        one, _ = await read_ids(c.resource("api.one"))
        none, _ = await read_ids(c.resource("api.none"))
    assert one == [7] and none == []


async def test_cursor_guess_is_sent_before_the_page_is_parsed_and_checked_after():
    """The next cursor is read from the raw bytes, the request goes out at once; when the
    guess is wrong (here: a decoy key), it is cancelled and the right request is sent."""
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        calls.append(cursor)
        page = int(cursor or 0)
        body = {"data": [{"id": page}], "next_cursor": str(page + 1) if page < 3 else None}
        return httpx.Response(200, json=body)

    spec = {"path": "/c", "records": "data", "paginate": {"type": "cursor"}}
    async with make_catalog({"c": spec}, handler) as catalog:
        ids = [r["id"] async for r in catalog.resource("api.c").records()]
    assert ids == [0, 1, 2, 3]
    assert calls == [None, "1", "2", "3"]
