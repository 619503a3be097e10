"""Issue 10, reads: a read either gets everything the API has, or stops and says so.

Against small real servers on 127.0.0.1 (`quirky_api.py`, and the sandbox shop): pages a
server capped, empty pages that still carry a cursor, an API that ignores the paging
parameters, a `Link` header sent only on request, a misspelt incremental field, and
child reads that resume where they stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog, Page
from interlink.errors import IncompleteReadError, IncrementalError, PaginationError
from interlink.sandbox import SandboxServer, create_shop_app

from .quirky_api import CAP, QuirkyApi

TOKEN = "sandbox-token"


@pytest.fixture
def quirky() -> Iterator[tuple[QuirkyApi, str]]:
    api = QuirkyApi()
    with SandboxServer(api.app()) as server:
        yield api, server.url


def catalog(url: str, resources: dict[str, Any], **connection: Any) -> Catalog:
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": url, "retry": {"max_attempts": 1}, **connection}},
            "resources": {"api": resources},
        }
    )
    return Catalog(config)


async def read(catalog: Catalog, name: str, **kwargs: Any) -> tuple[list[Any], list[Page]]:
    ids: list[Any] = []
    pages: list[Page] = []
    async for page in catalog.resource(name).pages(**kwargs):
        pages.append(page)
        ids.extend(record["id"] for record in page.records)
        assert len(pages) < 200, "the read does not stop"
    return ids, pages


# -- 1. a server that caps the page size ---------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_page_numbers_with_a_total_read_past_a_capped_page_size(quirky, concurrency):
    """Asked 100 a page, given 50: the page count comes from what arrived, not from 100."""
    api, url = quirky
    spec = {
        "path": "/capped",
        "records": "items",
        "paginate": {"type": "page", "page_size": 100, "total_path": "total"},
        "concurrency": concurrency,
    }
    async with catalog(url, {"items": spec}) as c:
        ids, pages = await read(c, "api.items")
    assert ids == list(range(1, 5001))
    assert len(pages) == 5000 // CAP and pages[-1].done and pages[-1].complete
    assert len(api.requests) == 5000 // CAP, "no page asked for past the last one"


async def test_a_capped_page_read_resumes_from_its_checkpoint(quirky):
    _, url = quirky
    spec = {
        "path": "/capped",
        "records": "items",
        "paginate": {"type": "page", "page_size": 100, "total_path": "total"},
    }
    async with catalog(url, {"items": spec}) as c:
        first: list[int] = []
        async for page in c.resource("api.items").pages():
            first.extend(r["id"] for r in page.records)
            if len(first) == 1000:
                checkpoint = page.checkpoint
                break
        assert checkpoint == {"page": 21, "received": 1000, "announced": 5000}
        rest, pages = await read(c, "api.items", resume=checkpoint)
    assert first + rest == list(range(1, 5001))
    assert pages[-1].complete


# -- 2. empty pages that still carry a cursor ----------------------------------------------


@pytest.mark.parametrize(
    ("style", "paginate", "records"),
    [
        ("cursor", {"type": "cursor", "cursor_param": "after"}, "data"),
        ("next_url", {"type": "next_url"}, "results"),
        ("link", {"type": "link_header"}, None),
    ],
)
async def test_a_filtered_scan_goes_on_through_empty_pages(quirky, style, paginate, records):
    api, url = quirky
    spec = {"path": f"/sparse/{style}", "paginate": paginate, "params": {"limit": 100}}
    if records:
        spec["records"] = records
    async with catalog(url, {"scan": spec}) as c:
        ids, pages = await read(c, "api.scan")
    assert ids == sorted(api.matches)
    assert len(pages) == 10 and not any(p.records for p in pages[:8])


async def test_a_cursor_read_resumed_mid_way_still_checks_the_total(quirky):
    """The checkpoint says how many records came before it, so the count holds."""
    api, url = quirky
    spec = {
        "path": "/sparse/cursor",
        "records": "data",
        "params": {"limit": 50},
        "paginate": {"type": "cursor", "cursor_param": "after"},
    }
    async with catalog(url, {"scan": spec}) as c:
        seen: list[int] = []
        async for page in c.resource("api.scan").pages():
            seen.extend(r["id"] for r in page.records)
            if len(seen) >= 10:
                checkpoint = page.checkpoint
                break
        assert checkpoint is not None and checkpoint["received"] == len(seen)
        rest, pages = await read(c, "api.scan", resume=checkpoint)
        assert seen + rest == sorted(api.matches) and pages[-1].complete
        # The same checkpoint claiming fewer earlier records: the read is now short.
        with pytest.raises(IncompleteReadError) as caught:
            await read(c, "api.scan", resume={**checkpoint, "received": 1})
    assert caught.value.expected == len(api.matches)
    assert caught.value.got == 1 + len(rest)


# -- 3. an API that ignores the paging parameters -----------------------------------------


@pytest.mark.parametrize(
    ("paginate", "param"),
    [({"type": "offset", "page_size": 100, "overlap": 0}, "offset"), ({"type": "page"}, "page")],
)
async def test_an_api_that_ignores_paging_stops_on_the_repeated_page(
    quirky, caplog, paginate, param
):
    """json-server ignores offset/limit: the same 5,000 records came back 144 times."""
    api, url = quirky
    spec = {"path": "/json-server/items", "paginate": paginate}
    pages: list[Page] = []
    with caplog.at_level(logging.WARNING, logger="interlink.connectors"):
        async with catalog(url, {"items": spec}) as c:
            with pytest.raises(PaginationError) as caught:
                async for page in c.resource("api.items").pages():
                    pages.append(page)
                    assert len(pages) < 5, "the same records, again and again"
    message = str(caught.value)
    assert f"the API ignored `{param}`: page 2 ({param}=" in message
    assert "returned the same records as page 1" in message
    assert len(api.requests) <= 2 + 4, "at most the prefetched pages past page 2"
    size = "limit=100" if param == "offset" else "per_page=100"
    assert len(pages) == 1 and len(pages[0].warnings) == 1
    assert (
        f"page 1 has 5,000 records, more than the 100 asked for (`{size}`)"
        in (pages[0].warnings[0])
    )
    assert pages[0].warnings[0] in caplog.messages


async def test_a_page_served_twice_later_in_the_read_is_named(quirky):
    """An API that answers the last page again past the end: without a total the read
    cannot tell that from a page repeated mid-way, so it stops and says so."""
    _, url = quirky
    spec = {"path": "/clamped", "paginate": {"type": "page", "page_size": 1000}}
    async with catalog(url, {"items": spec}) as c:
        with pytest.raises(PaginationError) as caught:
            await read(c, "api.items")
    message = str(caught.value)
    assert "page 6 (page=6) returned the same records as page 5" in message
    assert "give the paginator a total" in message


# -- 4. a read that ends short of the total the API announced -----------------------------


LINK_ON_PAGE = {
    "path": "/link-on-page",
    "paginate": {"type": "link_header", "page_size": 500},
}


async def test_link_header_sent_only_on_request_is_an_incomplete_read(quirky):
    """The API sent `Link` only with `page=`: 500 of 5,000 records, reported as success."""
    _, url = quirky
    async with catalog(url, {"items": LINK_ON_PAGE}) as c:
        with pytest.raises(IncompleteReadError) as caught:
            await read(c, "api.items")
    error = caught.value
    assert (error.expected, error.got) == (5000, 500)
    assert "500 records arrived but the X-Total-Count header says 5,000" in str(error)
    assert "params: {page: 1}" in str(error), "the message says how to fix it"
    assert str(error).startswith("api.items: ")


async def test_naming_the_first_page_reads_everything(quirky):
    _, url = quirky
    spec = {**LINK_ON_PAGE, "params": {"page": 1}}
    async with catalog(url, {"items": spec}) as c:
        ids, pages = await read(c, "api.items")
    assert ids == list(range(1, 5001)) and pages[-1].complete and not pages[-1].warnings


async def test_on_total_mismatch_warn_ends_the_read_marked_incomplete(quirky, caplog):
    _, url = quirky
    spec = {**LINK_ON_PAGE, "on_total_mismatch": "warn"}
    with caplog.at_level(logging.WARNING, logger="interlink.connectors"):
        async with catalog(url, {"items": spec}) as c:
            ids, pages = await read(c, "api.items")
    assert len(ids) == 500
    last = pages[-1]
    assert last.done and not last.complete
    assert len(last.warnings) == 1 and "X-Total-Count header says 5,000" in last.warnings[0]
    assert "marked incomplete" in last.warnings[0]
    assert last.warnings[0] in caplog.messages


async def test_no_count_check_on_a_read_with_a_limit(quirky):
    _, url = quirky
    async with catalog(url, {"items": LINK_ON_PAGE}) as c:
        ids, pages = await read(c, "api.items", limit=100)
    assert len(ids) == 100 and pages[-1].done and pages[-1].complete


async def test_an_offset_read_short_of_its_total_field(quirky):
    _, url = quirky
    spec = {"path": "/short", "records": "data", "paginate": {"type": "offset"}}
    async with catalog(url, {"items": spec}) as c:
        with pytest.raises(IncompleteReadError, match="900 records arrived but the `total` field"):
            await read(c, "api.items")


async def test_a_next_url_read_short_of_its_count_field(quirky):
    _, url = quirky
    spec = {
        "path": "/short-drf",
        "records": "results",
        "paginate": {"type": "next_url", "total_path": "count"},
    }
    async with catalog(url, {"items": spec}) as c:
        with pytest.raises(IncompleteReadError, match="900 records arrived but the `count` field"):
            await read(c, "api.items")


async def test_a_total_that_changes_during_the_read_counts_at_its_last_value(quirky):
    """Records deleted ahead of the reader: the first page said 299, the last says 297."""
    _, url = quirky
    spec = {
        "path": "/shrinking",
        "records": "data",
        "params": {"limit": 100},
        "paginate": {"type": "cursor", "cursor_param": "after"},
    }
    async with catalog(url, {"items": spec}) as c:
        ids, pages = await read(c, "api.items")
    assert len(ids) == 298 and pages[-1].complete


async def test_records_dropped_by_the_client_side_filter_still_count_as_arrived(quirky):
    _, url = quirky
    spec = {
        "path": "/sparse/cursor",
        "records": "data",
        "paginate": {"type": "cursor", "cursor_param": "after"},
        "incremental": {"field": "id"},  # no `param`: filtered here, on the client
    }
    async with catalog(url, {"scan": spec}) as c:
        ids, pages = await read(c, "api.scan", since=990)
    assert ids == [994] and pages[-1].complete


def test_on_total_mismatch_is_validated():
    def resource(**settings: Any) -> InterlinkConfig:
        return InterlinkConfig.model_validate(
            {
                "connections": {"api": {"base_url": "http://127.0.0.1:1"}},
                "resources": {"api": {"x": {"path": "/x", **settings}}},
            }
        )

    assert resource().resources["api"]["x"].on_total_mismatch == "fail"
    assert resource(on_total_mismatch="warn").resources["api"]["x"].on_total_mismatch == "warn"
    with pytest.raises(ValueError, match="on_total_mismatch[^']*'fail' or 'warn'"):
        resource(on_total_mismatch="ignore")


# -- 5. an incremental field no record carries ---------------------------------------------


async def test_a_misspelt_incremental_field_fails_on_the_first_page():
    spec = {
        "path": "/customers",
        "records": "data",
        "paginate": {"type": "offset", "page_size": 100},
        "incremental": {"field": "updatedAt", "param": "updated_since"},  # it is updated_at
    }
    with SandboxServer(create_shop_app(records=300, token=TOKEN)) as server:
        auth = {"type": "bearer", "token": TOKEN}
        async with catalog(server.url, {"customers": spec}, auth=auth) as c:
            pages: list[Page] = []
            with pytest.raises(IncrementalError) as caught:
                async for page in c.resource("api.customers").pages():
                    pages.append(page)
    assert pages == []
    message = str(caught.value)
    assert "'updatedAt' is not in record id=1 on page 1" in message
    assert "updated_at" in message and "check `incremental.field`" in message


# -- 6. cursors compared typed, end to end -----------------------------------------------


@pytest.mark.parametrize(
    ("field", "since", "kept", "cursor"),
    [
        ("changed", "2026-01-05T10:00:00.1Z", [2], "2026-01-05T10:00:00.250Z"),
        ("version", "999", [1, 2], "1000"),
    ],
)
async def test_cursors_compare_as_times_and_numbers(quirky, field, since, kept, cursor):
    _, url = quirky
    spec = {"path": "/stamped", "records": "data", "incremental": {"field": field}}
    async with catalog(url, {"items": spec}) as c:
        ids, pages = await read(c, "api.items", since=since)
        everything, _ = await read(c, "api.items")
        resource = c.resource("api.items")
    assert ids == kept, "no record at or past the cursor is dropped"
    assert pages[-1].cursor == cursor, "the highest value, as the API wrote it"
    assert everything == [1, 2, 3, 4] and resource.last_cursor == cursor


# -- 7. child reads resume ---------------------------------------------------------------

CHILDREN = {
    "customers": {
        "path": "/customers",
        "records": "data",
        "paginate": {"type": "offset", "page_size": 10},
        "concurrency": 1,
    },
    "orders": {
        "path": "/customers/{parent.id}/orders",
        "parent": "customers",
        "parent_key": "customer_id",
        "records": "orders",
        "paginate": {"type": "page", "page_size": 2, "total_pages_path": "total_pages"},
        "concurrency": 3,
    },
}


async def test_an_interrupted_child_read_resumes_at_its_parent_page():
    """Each page's checkpoint is what the runner stores: a child page's must not be None."""
    with SandboxServer(create_shop_app(records=50, token=TOKEN)) as server:
        auth = {"type": "bearer", "token": TOKEN}
        async with catalog(server.url, CHILDREN, auth=auth) as c:
            everything = {
                (r["id"], r["customer_id"]) async for r in c.resource("api.orders").records()
            }
            first: list[tuple[int, int]] = []
            stored: dict[str, Any] | None = None
            async for page in c.resource("api.orders").pages():
                first.extend((r["id"], r["customer_id"]) for r in page.records)
                stored = page.checkpoint  # saved with the page's records
                if any(r["customer_id"] > 25 for r in page.records):
                    break  # killed mid-way through parent page 3 (customers 20-28)
            assert stored is not None
            began = stored["read_began"]
            # Parent pages of 10 ask one customer back: 1-10, then 10-19 (11-19 new).
            assert stored == {
                "offset": 19,
                "received": 19,
                "announced": 50,
                "read_began": began,
                # The parent page before's last customers: the resumed parent page is
                # asked one back and checked against them.
                "overlap_keys": {"by": "key", "ids": list(range(10, 20))},
            }
            resumed_pages = [p async for p in c.resource("api.orders").pages(resume=stored)]
            # The resumed read is the same read: its checkpoints keep when it began.
            assert {p.checkpoint["read_began"] for p in resumed_pages if p.checkpoint} == {began}
            resumed = [
                (r["id"], r["customer_id"])
                async for r in c.resource("api.orders").records(resume=stored)
            ]
    assert set(first) | set(resumed) == everything
    again = set(first) & set(resumed)
    assert again and {customer for _, customer in again} <= set(range(20, 29)), (
        "at most the children of one parent page are read twice"
    )
    assert min(customer for _, customer in resumed) > 19  # customer 19, asked back, dropped


async def test_the_first_parent_page_checkpoint_is_an_empty_dict_and_restarts():
    with SandboxServer(create_shop_app(records=30, token=TOKEN)) as server:
        auth = {"type": "bearer", "token": TOKEN}
        async with catalog(server.url, CHILDREN, auth=auth) as c:
            orders = c.resource("api.orders")
            async for page in orders.pages():
                if page.records:
                    stored = page.checkpoint
                    break
            # Under way, from the beginning; with when the read began, nothing else.
            assert list(stored) == ["read_began"]
            ids, _ = await read(c, "api.orders", resume=stored)
            everything, _ = await read(c, "api.orders")
    assert sorted(ids) == sorted(everything) and len(ids) > 30


# -- a one-page list that outgrew its page -------------------------------------------------


async def test_a_single_page_read_with_a_total_fails_when_the_list_outgrew_it():
    """`type: single` with `total_path`: the shop answers 100 of its 230 customers and says
    `total: 230`; the read fails rather than end with 100. Without `total_path` it cannot
    tell (the file `init --from` writes for a one-page list keeps the body's total)."""
    with SandboxServer(create_shop_app(records=230)) as server:
        spec = {"path": "/customers", "records": "data", "paginate": {"type": "single"}}
        checked = {**spec, "paginate": {"type": "single", "total_path": "total"}}
        async with catalog(server.url, {"plain": spec, "checked": checked}) as c:
            ids, _ = await read(c, "api.plain")
            assert len(ids) == 100
            with pytest.raises(IncompleteReadError, match="100 records arrived but the `total`"):
                await read(c, "api.checked")
    with SandboxServer(create_shop_app(records=80)) as server:
        async with catalog(server.url, {"checked": checked}) as c:
            ids, pages = await read(c, "api.checked")
    assert len(ids) == 80 and pages[-1].complete
