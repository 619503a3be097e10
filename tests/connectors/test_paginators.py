"""Each paginator as a pure state object: driven by hand with built pages, no I/O."""

from __future__ import annotations

import httpx
import pytest

from interlink.connectors import (
    BasePaginator,
    CursorPaginator,
    Fetched,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    RelayPaginator,
    RequestSpec,
    SinglePagePaginator,
    create_paginator,
    paginator_types,
    register_paginator,
)
from interlink.errors import PaginationError


def page(body, *, url="https://api.test/items", headers=None) -> Fetched:
    request = httpx.Request("GET", url)
    return Fetched(body, httpx.Response(200, headers=headers, request=request))


def records(n: int) -> list[dict]:
    return [{"id": i} for i in range(n)]


class TestOffsetPaginator:
    def test_walks_to_the_total(self):
        p = OffsetPaginator(100, overlap=0)
        spec = RequestSpec("/items")
        p.init_request(spec)
        assert spec.params == {"offset": 0, "limit": 100}
        p.update_state(page({"total": 250}), records(100))
        assert p.has_next_page
        p.update_request(spec)
        assert spec.params["offset"] == 100
        p.update_state(page({"total": 250}), records(100))
        p.update_request(spec)
        p.update_state(page({"total": 250}), records(50))
        assert not p.has_next_page
        assert p.state() is None

    def test_each_page_after_the_first_asks_records_back(self):
        """The reader checks the records asked back against the page before (`_overlap`):
        5 of a page of 100 by default, 10 of 1,000, 1 of 10, none of 1."""
        assert [OffsetPaginator(n).overlap for n in (1, 2, 10, 100, 1000, 5000)] == [
            0,
            1,
            1,
            5,
            10,
            10,
        ]
        p = OffsetPaginator(100)
        spec = RequestSpec("/items")
        p.init_request(spec)
        assert p.back == 0 and spec.params == {"offset": 0, "limit": 100}
        p.update_state(page({"total": 250}), records(100))
        p.update_request(spec)
        assert p.back == 5 and spec.params["offset"] == 95
        assert p.plan() == [{"offset": 95}, {"offset": 190}]
        p.update_state(page({"total": 250}), records(100))  # 95-194: 95 new
        assert p.offset == 195 and p.state() == {"offset": 195}
        p.update_request(spec)
        assert spec.params["offset"] == 190
        p.update_state(page({"total": 250}), records(60))  # 190-249
        assert p.offset == 250 and not p.has_next_page

    def test_a_page_with_only_the_records_asked_back_ends_the_read(self):
        p = OffsetPaginator(100, total_path=None)
        p.update_state(page({}), records(100))
        assert p.has_next_page and p.back == 5
        p.update_state(page({}), records(5))
        assert not p.has_next_page and p.offset == 100

    def test_a_resumed_read_asks_back_only_with_keys_to_check(self):
        p = OffsetPaginator(100)
        spec = RequestSpec("/items")
        p.restore({"offset": 300}, spec)
        assert p.back == 0 and spec.params["offset"] == 300
        kept = OffsetPaginator(100)
        kept.restore(
            {"offset": 300, "overlap_keys": {"by": "key", "ids": [296, 297, 298, 299, 300]}}, spec
        )
        assert kept.back == 5 and spec.params["offset"] == 295

    def test_stops_on_a_short_page_without_a_total(self):
        p = OffsetPaginator(100, total_path=None)
        p.update_state(page({}), records(100))
        assert p.has_next_page
        p.update_state(page({}), records(99))
        assert not p.has_next_page

    def test_a_short_first_page_without_a_total_asks_once_more(self):
        # The server may cap `limit` without saying so: the next page tells.
        capped = OffsetPaginator(1000, total_path=None)
        capped.update_state(page({}), records(100))
        assert capped.has_next_page and capped.probing and capped.offset == 100
        capped.update_state(page({}), records(100))
        assert capped.has_next_page and not capped.probing and capped.offset == 200
        capped.update_state(page({}), records(40))
        assert not capped.has_next_page
        ended = OffsetPaginator(1000, total_path=None)
        ended.update_state(page({}), records(7))
        ended.update_state(page({}), [])
        assert not ended.has_next_page and not ended.probing

    def test_stops_on_an_empty_page_even_if_total_says_more(self):
        p = OffsetPaginator(10)
        p.update_state(page({"total": 1000}), [])
        assert not p.has_next_page

    def test_exactly_the_total_stops_without_an_extra_request(self):
        p = OffsetPaginator(100)
        p.update_state(page({"total": 100}), records(100))
        assert not p.has_next_page

    def test_plan_lists_the_remaining_offsets(self):
        p = OffsetPaginator(100, overlap=0)
        p.update_state(page({"total": 450}), records(100))
        assert p.plan() == [{"offset": 100}, {"offset": 200}, {"offset": 300}, {"offset": 400}]

    def test_server_capped_limit_is_followed(self):
        p = OffsetPaginator(5000, overlap=0)
        p.update_state(page({"total": 2500}), records(1000))
        assert p.has_next_page
        assert p.plan() == [{"offset": 1000}, {"offset": 2000}]

    def test_checkpoint_round_trip(self):
        p = OffsetPaginator(100, offset_param="skip", limit_param="top")
        p.update_state(page({"total": 500}), records(100))
        state = p.state()
        assert state == {"offset": 100}
        resumed = OffsetPaginator(100, offset_param="skip", limit_param="top")
        spec = RequestSpec("/items")
        resumed.restore(state, spec)
        assert spec.params == {"skip": 100, "top": 100}

    def test_total_as_string_and_nested_path(self):
        p = OffsetPaginator(10, total_path="meta.count")
        p.update_state(page({"meta": {"count": "15"}}), records(10))
        assert p.total == 15

    def test_bad_checkpoint(self):
        with pytest.raises(PaginationError):
            OffsetPaginator().restore({"offset": "x"}, RequestSpec("/"))

    def test_a_resumed_read_learns_the_capped_size_too(self):
        """Issue 10: the size the server serves is learned after a resume as well."""
        p = OffsetPaginator(100, overlap=0)
        p.restore({"offset": 500}, RequestSpec("/items"))
        p.update_state(page({"total": 1000}), records(50))
        assert p.plan() == [{"offset": o} for o in range(550, 1000, 50)]
        guess = p.peek(page({}), RequestSpec("/items"))
        assert guess is not None and guess.params["offset"] == 600

    def test_a_page_larger_than_asked_sets_the_step(self):
        p = OffsetPaginator(100, total_path=None)
        p.update_state(page([]), records(250))
        assert p.has_next_page and p.step == 250
        p.update_state(page([]), records(249))
        assert not p.has_next_page

    def test_totals_and_messages(self):
        p = OffsetPaginator(100, offset_param="skip", limit_param="top", start=10, overlap=0)
        assert p.asked() == ("top", 100) and p.position_param() == "skip"
        assert p.totals() == []
        p.update_state(page({"total": 300}), records(100))
        p.update_state(page({"total": 300}), [])
        (total,) = p.totals()
        assert (total.expected, total.got, total.short) == (300, 110, True)
        assert total.describe() == "110 records arrived but the `total` field says 300"
        assert p.records_reached(100) == 110, "counted from the first record, not from start"


class TestPageNumberPaginator:
    def test_total_pages(self):
        p = PageNumberPaginator(100, total_pages_path="total_pages")
        spec = RequestSpec("/items")
        p.init_request(spec)
        assert spec.params == {"page": 1, "per_page": 100}
        p.update_state(page({"total_pages": 2}), records(100))
        p.update_request(spec)
        assert spec.params["page"] == 2 and p.has_next_page
        p.update_state(page({"total_pages": 2}), records(100))
        assert not p.has_next_page

    def test_total_items_gives_pages(self):
        p = PageNumberPaginator(100, total_path="total")
        p.update_state(page({"total": 201}), records(100))
        assert p.total == 201 and p.received == 100
        assert p.plan() == [{"page": 2}, {"page": 3}]

    def test_zero_based_pages(self):
        p = PageNumberPaginator(10, start=0, total_pages_path="pages", size_param=None)
        spec = RequestSpec("/items")
        p.init_request(spec)
        assert spec.params == {"page": 0}
        p.update_state(page({"pages": 2}), records(10))
        assert p.has_next_page and p.plan() == [{"page": 1}]
        p.update_state(page({"pages": 2}), records(10))
        assert not p.has_next_page

    def test_short_and_empty_pages_stop(self):
        p = PageNumberPaginator(10)
        p.update_state(page([]), records(10))
        p.update_state(page([]), records(9))
        assert not p.has_next_page
        # A short FIRST page without totals asks for one more (a silent cap on per_page).
        first = PageNumberPaginator(10)
        first.update_state(page([]), records(9))
        assert first.has_next_page and first.probing and first.size == 9
        first.update_state(page([]), [])
        assert not first.has_next_page
        q = PageNumberPaginator(10)
        q.update_state(page([]), [])
        assert not q.has_next_page

    def test_checkpoint_round_trip(self):
        p = PageNumberPaginator(10)
        p.update_state(page({}), records(10))
        state = p.state()
        assert state == {"page": 2, "received": 10}
        spec = RequestSpec("/items")
        resumed = PageNumberPaginator(10)
        resumed.restore(state, spec)
        assert spec.params == {"page": 2, "per_page": 10} and resumed.received == 10

    def test_a_checkpoint_without_a_count_assumes_full_pages(self):
        p = PageNumberPaginator(10, total_path="total")
        p.restore({"page": 4}, RequestSpec("/items"))
        assert p.received == 30

    def test_a_capped_page_size_is_read_to_the_total(self):
        """Issue 10: asked 100, given 50, total 250: five pages, not three."""
        p = PageNumberPaginator(100, total_path="total")
        body = page({"total": 250})
        assert p.peek(body, RequestSpec("/items")) is None, "the total is not known yet"
        p.update_state(body, records(50))
        assert p.size == 50 and p.has_next_page
        assert p.plan() == [{"page": n} for n in (2, 3, 4, 5)]
        for _ in range(3):
            p.update_state(body, records(50))
            assert p.has_next_page
        assert p.peek(body, RequestSpec("/items")) is None, "page 5 is the last"
        p.update_state(body, records(50))
        assert not p.has_next_page and p.totals()[0].short is False

    def _read(self, sizes, pages, asked=10):
        p = PageNumberPaginator(asked, total_pages_path="pages")
        for size in sizes:
            p.update_state(page({"pages": pages}), records(size))
        return p

    def test_a_short_page_before_the_last_is_records_missing(self):
        """`totalPages` alone counts pages: a page before the last with fewer records than
        the others passed (SOAP's page reads lost records that way, read "succeeded")."""
        p = self._read([10, 7, 10, 10, 10], pages=5)
        assert not p.has_next_page
        [short] = [t for t in p.totals() if t.short]
        assert (short.expected, short.got, short.unit) == (50, 47, "records")
        assert short.describe() == (
            "47 records arrived but 5 pages of 10 by the `pages` field (page 2 had 7) says 50"
        )

    def test_a_short_last_page_or_a_capped_size_is_no_shortfall(self):
        assert not any(t.short for t in self._read([10, 10, 3], pages=3).totals())
        # Asked 10, the server serves 5 and counts its pages of 5: its size, learned.
        capped = self._read([5] * 10, pages=10)
        assert capped.size == 5 and not any(t.short for t in capped.totals())
        # A first page with more than asked (a pinned item) does not make the rest short.
        assert not any(t.short for t in self._read([12, 10, 10, 5], pages=4).totals())

    def test_a_records_total_is_checked_instead(self):
        p = PageNumberPaginator(10, total_path="total", total_pages_path="pages")
        for size in [10, 7, 10, 10, 10]:
            p.update_state(page({"pages": 5, "total": 47}), records(size))
        assert not any(t.short for t in p.totals()), "the API's own count says 47"

    def test_a_resumed_read_keeps_the_size_and_what_came_short(self):
        before = self._read([10, 7, 10], pages=5)
        state = before.state()
        assert state == {"page": 4, "received": 27, "size": 10, "short": [[2, 7]]}
        after = PageNumberPaginator(10, total_pages_path="pages")
        after.restore(state, RequestSpec("/items"))
        for size in [10, 10]:
            after.update_state(page({"pages": 5}), records(size))
        [short] = [t for t in after.totals() if t.short]
        assert (short.expected, short.got) == (50, 47)
        # The first page after the resume coming short is short, not taken for a cap.
        again = PageNumberPaginator(10, total_pages_path="pages")
        again.restore({"page": 2, "received": 10, "size": 10}, RequestSpec("/items"))
        for size in [6, 10, 10, 10]:
            again.update_state(page({"pages": 5}), records(size))
        assert [t.expected for t in again.totals() if t.short] == [50]

    def test_an_empty_page_before_the_last_is_short(self):
        p = PageNumberPaginator(10, total_pages_path="pages")
        p.update_state(page({"pages": 4}), records(10))
        p.update_state(page({"pages": 4}), [])
        assert not p.has_next_page
        (total,) = p.totals()
        assert (total.expected, total.got, total.unit) == (4, 2, "pages")
        assert total.describe() == "2 pages were read but the `pages` field says 4"
        assert p.asked() == ("per_page", 10) and p.position_param() == "page"
        assert PageNumberPaginator(size_param=None).asked() is None


class TestCursorPaginator:
    def test_follows_the_cursor_until_null(self):
        p = CursorPaginator("meta.next", cursor_param="after", page_size=50)
        spec = RequestSpec("/items")
        p.init_request(spec)
        assert spec.params == {"limit": 50}
        p.update_state(page({"meta": {"next": "abc"}}), records(50))
        p.update_request(spec)
        assert spec.params["after"] == "abc"
        p.update_state(page({"meta": {"next": None}}), records(3))
        assert not p.has_next_page

    @pytest.mark.parametrize("body", [{}, {"next_cursor": ""}, {"next_cursor": None}])
    def test_missing_or_empty_cursor_stops(self, body):
        p = CursorPaginator()
        p.update_state(page(body), records(5))
        assert not p.has_next_page

    def test_an_empty_page_with_a_cursor_goes_on(self):
        """Issue 10: a filtered scan sends empty pages that still carry a cursor."""
        p = CursorPaginator()
        p.update_state(page({"next_cursor": "x"}), [])
        assert p.has_next_page and p.state() == {"cursor": "x"}
        p.update_state(page({"next_cursor": None}), [])
        assert not p.has_next_page

    def test_a_repeated_cursor_is_a_loop(self):
        p = CursorPaginator()
        p.update_state(page({"next_cursor": "same"}), records(1))
        with pytest.raises(PaginationError, match="twice"):
            p.update_state(page({"next_cursor": "same"}), records(1))

    def test_endless_empty_pages_stop_as_a_loop(self):
        p = CursorPaginator(max_empty_pages=3)
        for n in range(3):
            p.update_state(page({"next_cursor": f"c{n}"}), [])
        p.update_state(page({"next_cursor": "c3"}), records(1))
        for n in range(3):
            p.update_state(page({"next_cursor": f"d{n}"}), [])
        with pytest.raises(PaginationError, match="3 empty pages in a row"):
            p.update_state(page({"next_cursor": "e"}), [])

    def test_checkpoint_round_trip(self):
        p = CursorPaginator(page_size=10)
        p.update_state(page({"next_cursor": "c2"}), records(10))
        spec = RequestSpec("/items")
        CursorPaginator(page_size=10).restore(p.state(), spec)
        assert spec.params == {"limit": 10, "cursor": "c2"}


class TestNextUrlPaginator:
    def test_follows_absolute_and_relative_urls(self):
        p = NextUrlPaginator("next")
        spec = RequestSpec("/items", {"status": "active"})
        p.update_state(page({"next": "/items?page=2"}, url="https://api.test/items"), records(1))
        p.update_request(spec)
        assert spec.url == "https://api.test/items?page=2"
        assert spec.params == {}, "the next URL carries every parameter"
        p.update_state(page({"next": None}), records(1))
        assert not p.has_next_page

    def test_loop_detection(self):
        p = NextUrlPaginator()
        p.update_state(page({"next": "https://api.test/a"}), records(1))
        with pytest.raises(PaginationError):
            p.update_state(page({"next": "https://api.test/a"}), records(1))

    def test_an_empty_page_with_a_next_url_goes_on(self):
        p = NextUrlPaginator(page_size=20)
        p.update_state(page({"next": "https://api.test/b"}), [])
        assert p.has_next_page and p.asked() == ("limit", 20) and p.position_param() is None


class TestLinkHeaderPaginator:
    def test_reads_rel_next(self):
        p = LinkHeaderPaginator(page_size=100)
        spec = RequestSpec("/items")
        p.init_request(spec)
        assert spec.params == {"per_page": 100}
        link = (
            '<https://api.test/items?page=2>; rel="next", '
            '<https://api.test/items?page=9>; rel="last"'
        )
        p.update_state(page([], headers={"Link": link}), records(100))
        p.update_request(spec)
        assert spec.url == "https://api.test/items?page=2"
        first_only = {"Link": '<https://api.test/items?page=1>; rel="first"'}
        p.update_state(page([], headers=first_only), records(4))
        assert not p.has_next_page
        assert p.state() is None

    def test_an_empty_page_with_a_next_link_goes_on(self):
        p = LinkHeaderPaginator()
        p.update_state(page([], headers={"Link": "<https://api.test/x?p=2>; rel=next"}), [])
        assert p.has_next_page

    def test_a_read_that_ends_before_the_last_link(self):
        p = LinkHeaderPaginator()
        last = '<https://api.test/items?page=9>; rel="last"'
        p.update_state(page([], headers={"Link": last}), records(5))
        assert not p.has_next_page
        (total,) = p.totals()
        assert (total.expected, total.got, total.unit) == (9, 1, "page")
        assert total.describe() == "the read ended at page 1 but the `last` link names page 9"
        assert p.short_read_hint() is None

    def test_the_last_page_without_a_last_link_is_not_short(self):
        """GitHub leaves `next` and `last` off the last page: the page reached counts."""
        p = LinkHeaderPaginator()
        links = (
            '<https://api.test/items?page=2>; rel="next", '
            '<https://api.test/items?page=2>; rel="last"'
        )
        p.update_state(page([], headers={"Link": links}), records(5))
        first = '<https://api.test/items?page=1>; rel="first"'
        second = page([], url="https://api.test/items?page=2", headers={"Link": first})
        p.update_state(second, records(5))
        assert not p.has_next_page and not p.totals()[0].short

    def test_no_link_header_at_all_suggests_naming_the_page(self):
        p = LinkHeaderPaginator()
        p.update_state(page([]), records(5))
        assert p.totals() == [] and "params: {page: 1}" in (p.short_read_hint() or "")

    def test_checkpoint_is_the_next_url(self):
        p = LinkHeaderPaginator()
        p.update_state(page([], headers={"Link": "<https://api.test/x?p=2>; rel=next"}), records(1))
        spec = RequestSpec("/items", {"a": 1})
        LinkHeaderPaginator().restore(p.state(), spec)
        assert spec.url == "https://api.test/x?p=2" and spec.params == {}


class TestRelayPaginator:
    def body(self, has_next, cursor, n=2):
        return {
            "data": {
                "products": {
                    "edges": [{"cursor": f"c{i}", "node": {"id": i}} for i in range(n)],
                    "pageInfo": {"hasNextPage": has_next, "endCursor": cursor},
                }
            }
        }

    def test_pages_through_the_connection(self):
        p = RelayPaginator("data.products", page_size=2)
        spec = RequestSpec("/graphql", {"q": 1})
        p.init_request(spec)
        assert spec.params == {"q": 1, "first": 2}
        body = self.body(True, "c1")
        assert p.default_records(body) == [{"id": 0}, {"id": 1}]
        p.update_state(page(body), records(2))
        p.update_request(spec)
        assert spec.params["after"] == "c1"
        p.update_state(page(self.body(False, "c3")), records(2))
        assert not p.has_next_page

    def test_nodes_shortcut_and_missing_page_info(self):
        p = RelayPaginator("data.items")
        nodes = [{"id": 1}, {"id": 2}]
        assert p.default_records({"data": {"items": {"nodes": nodes}}}) == nodes
        with pytest.raises(PaginationError, match="pageInfo"):
            p.update_state(page({"data": {"items": {"nodes": []}}}), [])

    def test_a_cursor_that_does_not_move_is_a_loop(self):
        p = RelayPaginator("data.products")
        p.update_state(page(self.body(True, "same")), records(2))
        with pytest.raises(PaginationError):
            p.update_state(page(self.body(True, "same")), records(2))


def test_single_page():
    p = SinglePagePaginator()
    p.update_state(page([1, 2]), records(2))
    assert not p.has_next_page
    with pytest.raises(PaginationError):
        p.restore({"x": 1}, RequestSpec("/"))


class EveryOther(BasePaginator):
    def __init__(self, stop_after: int = 2) -> None:
        self.pages = 0
        self.stop_after = stop_after

    def update_state(self, fetched, records):
        self.pages += 1
        self.has_next_page = self.pages < self.stop_after


def test_create_from_names_dicts_models_and_instances():
    from interlink.config import OffsetPaginateConfig

    assert isinstance(create_paginator("cursor"), CursorPaginator)
    offset = create_paginator({"type": "offset", "page_size": 7, "offset_param": "skip"})
    assert isinstance(offset, OffsetPaginator) and offset.page_size == 7
    model = create_paginator(OffsetPaginateConfig(type="offset", page_size=3))
    assert isinstance(model, OffsetPaginator) and model.page_size == 3
    instance = EveryOther()
    assert create_paginator(instance) is instance


def test_custom_paginator_by_import_path():
    custom = create_paginator(
        {"type": "custom", "class": f"{__name__}:EveryOther", "options": {"stop_after": 5}}
    )
    assert isinstance(custom, EveryOther) and custom.stop_after == 5
    with pytest.raises(PaginationError, match="cannot import"):
        create_paginator({"type": "custom", "class": "nowhere.at_all:Thing"})
    with pytest.raises(PaginationError, match="not a BasePaginator"):
        create_paginator({"type": "custom", "class": "collections:OrderedDict"})


def test_registry():
    register_paginator("every_other", EveryOther)
    assert "every_other" in paginator_types()
    assert isinstance(create_paginator({"type": "every_other", "stop_after": 1}), EveryOther)
    with pytest.raises(PaginationError, match="known"):
        create_paginator({"type": "nope"})
