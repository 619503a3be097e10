"""Paginators that find pages by position: an offset, or a page number. Records removed
during such a read shift the later ones (`counts_positions`, see `_totals`)."""

from __future__ import annotations

import math
from typing import Any

from interlink.errors import PaginationError

from ._overlap import MOST_BACK, OVERLAP_KEYS
from ._page import Fetched, Record, RequestSpec
from ._paginator_base import BasePaginator, as_int
from ._selectors import compile_selector
from ._totals import Total, header_total

__all__ = ["OffsetPaginator", "PageNumberPaginator", "default_overlap"]


def default_overlap(page_size: int) -> int:
    """Records a page asks back: one in twenty of a page, 1 to 10 (none for pages of 1)."""
    return 0 if page_size < 2 else min(10, max(1, page_size // 20))


class OffsetPaginator(BasePaginator):
    """`offset`/`limit` parameters; stops on `total`, on a short page or on an empty page.

    Without a total, a first page shorter than asked is not taken for the end: the server
    may cap `limit` without saying so (asked 1000, given 100). The next page is asked for
    (offset moved by what came), and read on at that size unless it is empty: one
    request more for a list shorter than a page, and no silent short read.

    ```
    GET /customers?offset=0&limit=100     -> {"data": [...100], "total": 250}
    GET /customers?offset=100&limit=100   -> {"data": [...100], "total": 250}
    GET /customers?offset=200&limit=100   -> {"data": [...50],  "total": 250}   (done)
    ```

    Records removed from before the offset while the read goes on move later ones onto
    pages already read: with a record created meanwhile the total does not even fall.
    So each page after the first asks `overlap` records back (`back`), and the reader
    checks that the last records of the page before are among them (`_overlap`): the
    read then knows no record slipped between the two pages. `overlap` defaults to one
    record in twenty of a page, 1 to 10 (5 for 100, 10 for 1,000); 0 turns it off.

    ```
    GET /customers?offset=0&limit=100     -> records 0-99
    GET /customers?offset=95&limit=100    -> records 95-194 (95-99 again: checked, dropped)
    ```
    """

    counts_positions = True

    def __init__(
        self,
        page_size: int = 100,
        *,
        offset_param: str = "offset",
        limit_param: str = "limit",
        start: int = 0,
        total_path: str | None = "total",
        overlap: int | None = None,
    ) -> None:
        self.page_size = page_size
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.offset = start
        """The position of the first record not read yet."""
        self.step = page_size
        self.total: int | None = None
        self._total = compile_selector(total_path) if total_path else None
        self._total_path = total_path
        self._sized = False
        self.overlap = min(default_overlap(page_size) if overlap is None else overlap, MOST_BACK)
        self.back = 0
        """Records the next request asks back (0 for the first page, a probe, a resumed
        read without the keys to check them against)."""

    def _back_after(self, count: int) -> int:
        """The records the request after a page of `count` asks back: none after an
        empty page, for a probe, or when pages are too small to carry them."""
        if not count or self.probing or self.overlap >= self.step:
            return 0  # a probe asks from where the list would go on (see `end_check`)
        return self.overlap

    def init_request(self, spec: RequestSpec) -> None:
        spec.params[self.offset_param] = self.offset
        spec.params[self.limit_param] = self.page_size

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        if self._total is not None:
            total = as_int(self._total(fetched.body))
            if total is not None:
                self.total = total
        count = len(records)
        if not self._sized and count:
            # The first page shows the size the server really serves: it may cap our limit
            # (fewer, with more to come) or ignore it (more). Plan by what it gives.
            self._sized = True
            if count > self.page_size or (
                count < self.page_size
                and self.total is not None
                and self.offset + count < self.total
            ):
                self.step = count
            elif count < self.page_size and self.total is None:
                # Shorter than asked and no total: the end of a short list, or a server
                # that caps the page size without saying so. One more request tells.
                self.step = count
                self.probing = True
        elif self.probing:
            self.probing = False
        # The page began `back` records before the first one not read yet; the next one
        # not read yet is the one after it, as the list stands now.
        back = self.back
        self.offset += max(count - back, 0)
        if count <= back:  # nothing past what was read already: the list ended
            self.has_next_page = False
        elif self.total is not None:
            self.has_next_page = self.offset < self.total
        else:
            self.has_next_page = count >= self.step
        self.back = self._back_after(count)

    def update_request(self, spec: RequestSpec) -> None:
        spec.params[self.offset_param] = self.offset - self.back

    def state(self) -> dict[str, Any] | None:
        return {"offset": self.offset} if self.has_next_page else None

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        offset = as_int(state.get("offset"))
        if offset is None:
            raise PaginationError(f"bad offset checkpoint {state!r}")
        self.offset = offset
        # The page before's last keys came with the checkpoint: ask back to check them.
        kept = state.get(OVERLAP_KEYS)
        ids = kept.get("ids") if isinstance(kept, dict) else None
        kept_count = len(ids) if isinstance(ids, list) else 0
        self.back = min(self.overlap, kept_count, offset) if self.overlap < self.step else 0
        spec.params[self.offset_param] = offset - self.back
        spec.params[self.limit_param] = self.page_size

    def plan(self) -> list[dict[str, Any]] | None:
        if self.total is None or not self.has_next_page:
            return None
        back = self.back
        return [
            {self.offset_param: o - back} for o in range(self.offset, self.total, self.step - back)
        ]

    def peek(self, fetched: Fetched, spec: RequestSpec) -> RequestSpec | None:
        # With the total known from an earlier page, a full page is the likely case: it
        # ends `step - back` records on, and the request after it asks back again.
        following = self.offset + self.step - self.back
        if self.total is None or following >= self.total:
            return None
        guess = spec.copy()
        guess.params[self.offset_param] = following - self._back_after(self.step)
        return guess

    def end_check(self, probe: RequestSpec) -> RequestSpec | None:
        # The probe asks from `offset`; the check from the record before it, with a limit
        # that offset is a multiple of where one fits (APIs that refuse other offsets).
        last = self.offset - 1
        if last < 2:
            return None
        check = probe.copy()
        check.params[self.offset_param] = last
        check.params[self.limit_param] = _window(last, self.page_size)
        return check

    def asked(self) -> tuple[str, int] | None:
        return self.limit_param, self.page_size

    def position_param(self) -> str | None:
        return self.offset_param

    def totals(self) -> list[Total]:
        if self.total is None:
            return []
        return [Total(self.total, self.offset, f"the `{self._total_path}` field")]

    def records_reached(self, received: int | None) -> int | None:
        return self.offset


class PageNumberPaginator(BasePaginator):
    """`page`/`per_page` parameters; stops on the last page, a short page or an empty page.

    With `total_path` (a count of records), the read goes on until that many records have
    arrived, whatever size the server's pages really are: a server that caps `per_page`
    (asked 100, gave 50) is read to the end, not to the page count of the size asked for.
    Without totals, a first page shorter than asked asks for the next page too (the cap
    may be silent); an empty page, or a 400/404/416 to it, ends the read.
    """

    counts_positions = True

    def __init__(
        self,
        page_size: int = 100,
        *,
        page_param: str = "page",
        size_param: str | None = "per_page",
        start: int = 1,
        total_path: str | None = None,
        total_pages_path: str | None = None,
    ) -> None:
        self.page_size = page_size
        self.page_param = page_param
        self.size_param = size_param
        self.start = start
        self.page = start
        self.total_pages: int | None = None
        self.total: int | None = None
        self.received = 0
        """Records that arrived from page `start` up to (not including) `page`."""
        self.size = page_size
        """The size the server really serves, learned from the first page read."""
        self._sized = False
        self._short: list[tuple[int, int]] = []
        """(page, records) of the pages before the last, by `total_pages`, that came with
        fewer records than `size`: positions the read did not get."""
        self._total = compile_selector(total_path) if total_path else None
        self._total_path = total_path
        self._total_pages = compile_selector(total_pages_path) if total_pages_path else None
        self._total_pages_path = total_pages_path

    def init_request(self, spec: RequestSpec) -> None:
        spec.params[self.page_param] = self.page
        if self.size_param:
            spec.params[self.size_param] = self.page_size

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        if self._total_pages is not None:
            pages = as_int(self._total_pages(fetched.body))
            if pages is not None:
                self.total_pages = pages
        if self._total is not None:
            total = as_int(self._total(fetched.body))
            if total is not None:
                self.total = total
        count = len(records)
        self.received += count
        read, self.page = self.page, self.page + 1
        last = self.start + self.total_pages - 1 if self.total_pages is not None else None
        # Pages counted, records not: a page before the last must be as full as the others
        # (the smaller of the size asked and the size served: a first page that came with
        # more than asked does not make the others short). A records total, the API's own
        # (`total_path`, X-Total-Count), is checked instead.
        counted = self.total is not None or header_total(fetched.headers) is not None
        full = min(self.size, self.page_size)
        if self._sized and not counted and last is not None and read < last and 0 < count < full:
            self._short.append((read, count))
        if not self._sized and count:
            # A page other than the last shows the size the server really serves.
            self._sized = True
            if self.total is not None and self.received < self.total:
                self.size = count
            elif last is not None and read < last and count < self.page_size:
                self.size = count  # a server that caps the page size, and says how many
            elif count > self.page_size:
                self.size = count
            elif count < self.page_size and self.total is None and self.total_pages is None:
                # Shorter than asked and no totals: the end of a short list, or a server
                # that caps the page size without saying so. One more page tells.
                self.size = count
                self.probing = True
        elif self.probing:
            self.probing = False
        if not records:
            self.has_next_page = False
        elif self.total_pages is not None:
            self.has_next_page = self.page < self.start + self.total_pages
        elif self.total is not None:
            self.has_next_page = self.received < self.total
        else:
            self.has_next_page = count >= self.size

    def update_request(self, spec: RequestSpec) -> None:
        spec.params[self.page_param] = self.page

    def state(self) -> dict[str, Any] | None:
        if not self.has_next_page:
            return None
        state: dict[str, Any] = {"page": self.page, "received": self.received}
        if self._sized and self.total_pages is not None:
            # What a resumed read needs to go on checking pages against their count: their
            # size, and the ones that came short before the interruption.
            state["size"] = self.size
            if self._short:
                state["short"] = [list(pair) for pair in self._short]
        return state

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        page = as_int(state.get("page"))
        if page is None:
            raise PaginationError(f"bad page checkpoint {state!r}")
        received = as_int(state.get("received"))
        size = as_int(state.get("size"))
        if size is not None and size > 0:
            self.size, self._sized = size, True
        short = state.get("short")
        if isinstance(short, list):
            self._short = [
                (int(pair[0]), int(pair[1]))
                for pair in short
                if isinstance(pair, list) and len(pair) == 2 and all(type(v) is int for v in pair)
            ]
        self.page = page
        # A checkpoint written before records were counted: full pages of the size asked.
        self.received = received if received is not None else (page - self.start) * self.page_size
        self.init_request(spec)

    def _pages_left(self) -> int | None:
        """Pages still to read after the ones read so far, when the totals tell."""
        if self.total_pages is not None:
            return max(0, self.start + self.total_pages - self.page)
        if self.total is not None:
            return max(0, math.ceil((self.total - self.received) / max(self.size, 1)))
        return None

    def plan(self) -> list[dict[str, Any]] | None:
        left = self._pages_left()
        if left is None or not self.has_next_page:
            return None
        return [{self.page_param: page} for page in range(self.page, self.page + left)]

    def peek(self, fetched: Fetched, spec: RequestSpec) -> RequestSpec | None:
        # Called before `update_state` learns from the page at `self.page`.
        left = self._pages_left()
        if left is None or left < 2:
            return None
        guess = spec.copy()
        guess.params[self.page_param] = self.page + 1
        return guess

    def end_check(self, probe: RequestSpec) -> RequestSpec | None:
        # Pages of one record fewer than were read: the second starts at the last of them.
        # Only after the first page alone (a read resumed later cannot size the window
        # within the API's cap); fewer than 3 records leave pages of 1, which cannot tell.
        if not self.size_param or self.received < 3 or self.page != self.start + 1:
            return None
        check = probe.copy()
        check.params[self.page_param] = self.start + 1
        check.params[self.size_param] = self.received - 1
        return check

    def asked(self) -> tuple[str, int] | None:
        return (self.size_param, self.page_size) if self.size_param else None

    def position_param(self) -> str | None:
        return self.page_param

    def totals(self) -> list[Total]:
        found: list[Total] = []
        if self.total_pages is not None:
            source = f"the `{self._total_pages_path}` field"
            found.append(Total(self.total_pages, self.page - self.start, source, "pages"))
        if self.total is not None:
            found.append(Total(self.total, self.received, f"the `{self._total_path}` field"))
        if self._short and self.total_pages is not None:
            page, count = self._short[0]
            full = min(self.size, self.page_size)
            missing = sum(full - count for _, count in self._short)
            source = (
                f"{self.total_pages} pages of {full} by the `{self._total_pages_path}` "
                f"field (page {page} had {count})"
            )
            found.append(Total(self.received + missing, self.received, source))
        return found

    def records_reached(self, received: int | None) -> int | None:
        return self.received


def _window(offset: int, most: int) -> int:
    """The largest page size, at most `most` and at least 2, that `offset` is a multiple
    of (`offset` itself when it fits); `most` when there is none."""
    for size in range(min(offset, most), 1, -1):
        if offset % size == 0:
            return size
    return most
