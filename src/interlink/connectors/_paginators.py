"""Paginators: small state objects that say what the next page request is. No I/O inside.

The reader drives them (dlt's design): `init_request` shapes the first request,
`update_state` learns from each page, `has_next_page` says whether to go on and
`update_request` shapes the next request. `state`/`restore` turn the position into a
checkpoint and back, and `plan` lists the remaining requests when the total is known, so
the reader can fetch several pages at once. `totals` tells the reader what the API
announced for the whole read, so a read that ends short of it does not pass for whole.

Write your own by subclassing `BasePaginator` and naming it in YAML:
`paginate: {type: custom, class: mypkg.paging:MyPaginator, options: {...}}`.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from interlink.errors import PaginationError

from ._page import Fetched, Record, RequestSpec
from ._selectors import MISSING, compile_selector, peek_string
from ._totals import Total

__all__ = [
    "BasePaginator",
    "CursorPaginator",
    "LinkHeaderPaginator",
    "NextUrlPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "RelayPaginator",
    "SinglePagePaginator",
    "create_paginator",
    "paginator_types",
    "register_paginator",
]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


MAX_EMPTY_PAGES = 1000
"""Empty pages in a row, each with a new cursor or link, before a read is taken for a loop."""


class BasePaginator(ABC):
    """The contract between a paginator and the reader that drives it.

    Override `update_state` (required) and whichever of `init_request`, `update_request`,
    `state`, `restore` and `plan` your API needs. Keep it free of I/O: everything it needs
    is in the `Fetched` page and the records selected from it.
    """

    has_next_page: bool = True

    def init_request(self, spec: RequestSpec) -> None:
        """Shape the first request (page size, first page number...)."""
        return None

    @abstractmethod
    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        """Learn from a page; set `has_next_page`."""

    def update_request(self, spec: RequestSpec) -> None:
        """Shape the request for the next page."""
        return None

    def state(self) -> dict[str, Any] | None:
        """Where the next page starts, as a JSON-able checkpoint; None when done."""
        return None

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        """Continue from a checkpoint `state()` returned: shape `spec` for that page."""
        raise PaginationError(f"{type(self).__name__} cannot resume from a checkpoint")

    def plan(self) -> list[dict[str, Any]] | None:
        """The params of every remaining page, when they are known without reading on."""
        return None

    def peek(self, fetched: Fetched, spec: RequestSpec) -> RequestSpec | None:
        """A guess at the next request from headers or raw bytes, before the body is parsed.

        The reader sends the guess at once, so the server works on the next page while this
        one is parsed; if `update_request` then disagrees, the guess is cancelled. Return
        None (the default) when you cannot tell cheaply.
        """
        return None

    def default_records(self, body: Any) -> Any:
        """Where the records are when the resource does not say (MISSING: no opinion)."""
        return MISSING

    def asked(self) -> tuple[str, int] | None:
        """The page-size parameter and the size sent (`("limit", 100)`), if one is sent.

        A page larger than that makes the reader warn that the API may ignore it.
        """
        return None

    counts_positions: bool = False
    """True when pages are found by position (an offset, a page number): records removed
    during the read shift the later ones (see `_totals`)."""

    def position_param(self) -> str | None:
        """The parameter that moves the read on from page to page (`offset`, `page`,
        `cursor`), named when the API ignores it; None when a next link does it."""
        return None

    def totals(self) -> list[Total]:
        """What the API announced for the whole read, as of the latest page, beside how far
        the read got (`Total(expected=250, got=200, source="the `total` field")`).

        The reader fails a whole read that ends with any of them short. Return what the
        pages said; [] (the default) when they say nothing.
        """
        return []

    def records_reached(self, received: int | None) -> int | None:
        """How far into the API's whole list the read got, in records, for `X-Total-Count`.

        `received` counts the records of this read (None when unknown after a resume);
        override when the read may start past the first record (an offset `start`).
        """
        return received

    def short_read_hint(self) -> str | None:
        """A suggestion to add to the message of a read that ended short."""
        return None


class SinglePagePaginator(BasePaginator):
    """The whole result comes in one response."""

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        self.has_next_page = False


class OffsetPaginator(BasePaginator):
    """`offset`/`limit` parameters; stops on `total`, on a short page or on an empty page.

    ```
    GET /customers?offset=0&limit=100     -> {"data": [...100], "total": 250}
    GET /customers?offset=100&limit=100   -> {"data": [...100], "total": 250}
    GET /customers?offset=200&limit=100   -> {"data": [...50],  "total": 250}   (done)
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
    ) -> None:
        self.page_size = page_size
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.offset = start
        self.step = page_size
        self.total: int | None = None
        self._total = compile_selector(total_path) if total_path else None
        self._total_path = total_path
        self._sized = False

    def init_request(self, spec: RequestSpec) -> None:
        spec.params[self.offset_param] = self.offset
        spec.params[self.limit_param] = self.page_size

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        if self._total is not None:
            total = _int(self._total(fetched.body))
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
        self.offset += count
        if count == 0:
            self.has_next_page = False
        elif self.total is not None:
            self.has_next_page = self.offset < self.total
        else:
            self.has_next_page = count >= self.step

    def update_request(self, spec: RequestSpec) -> None:
        spec.params[self.offset_param] = self.offset

    def state(self) -> dict[str, Any] | None:
        return {"offset": self.offset} if self.has_next_page else None

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        offset = _int(state.get("offset"))
        if offset is None:
            raise PaginationError(f"bad offset checkpoint {state!r}")
        self.offset = offset
        spec.params[self.offset_param] = offset
        spec.params[self.limit_param] = self.page_size

    def plan(self) -> list[dict[str, Any]] | None:
        if self.total is None or not self.has_next_page:
            return None
        return [{self.offset_param: o} for o in range(self.offset, self.total, self.step)]

    def peek(self, fetched: Fetched, spec: RequestSpec) -> RequestSpec | None:
        # With the total known from an earlier page, a full page is the likely case.
        following = self.offset + self.step
        if self.total is None or following >= self.total:
            return None
        guess = spec.copy()
        guess.params[self.offset_param] = following
        return guess

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
            pages = _int(self._total_pages(fetched.body))
            if pages is not None:
                self.total_pages = pages
        if self._total is not None:
            total = _int(self._total(fetched.body))
            if total is not None:
                self.total = total
        count = len(records)
        self.received += count
        self.page += 1
        if not self._sized and count:
            # A page other than the last shows the size the server really serves.
            self._sized = True
            if self.total is not None and self.received < self.total:
                self.size = count
            elif count > self.page_size:
                self.size = count
        if not records:
            self.has_next_page = False
        elif self.total_pages is not None:
            self.has_next_page = self.page < self.start + self.total_pages
        elif self.total is not None:
            self.has_next_page = self.received < self.total
        else:
            self.has_next_page = count >= self.page_size

    def update_request(self, spec: RequestSpec) -> None:
        spec.params[self.page_param] = self.page

    def state(self) -> dict[str, Any] | None:
        return {"page": self.page, "received": self.received} if self.has_next_page else None

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        page = _int(state.get("page"))
        if page is None:
            raise PaginationError(f"bad page checkpoint {state!r}")
        received = _int(state.get("received"))
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
        return found

    def records_reached(self, received: int | None) -> int | None:
        return self.received


class _BodyTotal:
    """The count of records at `total_path` in the body (DRF's `count`), for paginators that
    do not need it to page."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.value: int | None = None
        self._select = compile_selector(path) if path else None

    def update(self, fetched: Fetched) -> None:
        if self._select is not None:
            value = _int(self._select(fetched.body))
            if value is not None:
                self.value = value

    def totals(self) -> list[Total]:
        if self.value is None:
            return []
        return [Total(self.value, None, f"the `{self.path}` field")]


class _EmptyRun:
    """Counts empty pages in a row that still point further: a filtered scan sends some,
    an API that links on forever sends them without end."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def update(self, records: list[Record]) -> None:
        self.count = 0 if records else self.count + 1
        if self.count > self.limit:
            raise PaginationError(
                f"the API sent {self.limit} empty pages in a row, each pointing to yet "
                "another page; stopping (raise `max_empty_pages` if this API really has "
                "such long runs of empty pages)"
            )


class CursorPaginator(BasePaginator):
    """The next page's cursor comes in the body and goes back as a parameter.

    The cursor alone decides whether there is a next page: a filtered scan may send empty
    pages that still carry one. A cursor sent twice stops the read (PaginationError).
    """

    def __init__(
        self,
        cursor_path: str = "next_cursor",
        *,
        cursor_param: str = "cursor",
        page_size: int | None = None,
        size_param: str = "limit",
        max_empty_pages: int = MAX_EMPTY_PAGES,
        total_path: str | None = None,
    ) -> None:
        self.cursor_param = cursor_param
        self.page_size = page_size
        self.size_param = size_param
        self.cursor: str | None = None
        self._cursor = compile_selector(cursor_path)
        self._cursor_path = cursor_path
        self._seen: set[str] = set()
        self._empty = _EmptyRun(max_empty_pages)
        self._body_total = _BodyTotal(total_path)

    def init_request(self, spec: RequestSpec) -> None:
        if self.page_size:
            spec.params[self.size_param] = self.page_size

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        self._body_total.update(fetched)
        value = self._cursor(fetched.body)
        cursor = None if value in (None, "", MISSING) else str(value)
        if cursor is not None and cursor in self._seen:
            raise PaginationError(f"the API sent cursor {cursor!r} twice; stopping a loop")
        self.cursor = cursor
        self.has_next_page = cursor is not None
        if cursor is not None:
            self._seen.add(cursor)
            self._empty.update(records)

    def update_request(self, spec: RequestSpec) -> None:
        spec.params[self.cursor_param] = self.cursor

    def peek(self, fetched: Fetched, spec: RequestSpec) -> RequestSpec | None:
        cursor = peek_string(fetched.content, self._cursor_path)
        if not isinstance(cursor, str) or not cursor or cursor in self._seen:
            return None
        guess = spec.copy()
        guess.params[self.cursor_param] = cursor
        return guess

    def state(self) -> dict[str, Any] | None:
        return {"cursor": self.cursor} if self.has_next_page else None

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        cursor = state.get("cursor")
        if not isinstance(cursor, str) or not cursor:
            raise PaginationError(f"bad cursor checkpoint {state!r}")
        self.cursor = cursor
        self.init_request(spec)
        spec.params[self.cursor_param] = cursor

    def asked(self) -> tuple[str, int] | None:
        return (self.size_param, self.page_size) if self.page_size else None

    def position_param(self) -> str | None:
        return self.cursor_param

    def totals(self) -> list[Total]:
        return self._body_total.totals()


class _NextLinkPaginator(BasePaginator):
    """Follows a full URL to the next page; the URL carries every parameter."""

    def __init__(
        self,
        *,
        page_size: int | None = None,
        size_param: str = "limit",
        max_empty_pages: int = MAX_EMPTY_PAGES,
        total_path: str | None = None,
    ) -> None:
        self.page_size = page_size
        self.size_param = size_param
        self.next_url: str | None = None
        self._seen: set[str] = set()
        self._empty = _EmptyRun(max_empty_pages)
        self._body_total = _BodyTotal(total_path)

    @abstractmethod
    def _find_next(self, fetched: Fetched) -> str | None: ...

    def init_request(self, spec: RequestSpec) -> None:
        if self.page_size:
            spec.params[self.size_param] = self.page_size

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        self._body_total.update(fetched)
        url = self._find_next(fetched)
        if url:
            url = fetched.resolve(url)
        if url and url in self._seen:
            raise PaginationError(f"the API linked to {url} twice; stopping a loop")
        self.next_url = url or None
        self.has_next_page = bool(url)
        if url:
            self._seen.add(url)
            self._empty.update(records)

    def update_request(self, spec: RequestSpec) -> None:
        assert self.next_url is not None
        spec.url = self.next_url
        spec.params = {}

    def _peek_url(self, fetched: Fetched) -> str | None:
        return None

    def peek(self, fetched: Fetched, spec: RequestSpec) -> RequestSpec | None:
        url = self._peek_url(fetched)
        if url:
            url = fetched.resolve(url)
        if not url or url in self._seen:
            return None
        return RequestSpec(url, {})

    def state(self) -> dict[str, Any] | None:
        return {"url": self.next_url} if self.has_next_page else None

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        url = state.get("url")
        if not isinstance(url, str) or not url:
            raise PaginationError(f"bad next-URL checkpoint {state!r}")
        self.next_url = url
        self.update_request(spec)

    def asked(self) -> tuple[str, int] | None:
        return (self.size_param, self.page_size) if self.page_size else None

    def totals(self) -> list[Total]:
        return self._body_total.totals()


class NextUrlPaginator(_NextLinkPaginator):
    """The next page's URL is in the body (`{"results": [...], "next": "https://..."}`)."""

    def __init__(
        self,
        next_path: str = "next",
        *,
        page_size: int | None = None,
        size_param: str = "limit",
        max_empty_pages: int = MAX_EMPTY_PAGES,
        total_path: str | None = None,
    ) -> None:
        super().__init__(
            page_size=page_size,
            size_param=size_param,
            max_empty_pages=max_empty_pages,
            total_path=total_path,
        )
        self._next = compile_selector(next_path)
        self._next_path = next_path

    def _find_next(self, fetched: Fetched) -> str | None:
        value = self._next(fetched.body)
        return value if isinstance(value, str) and value else None

    def _peek_url(self, fetched: Fetched) -> str | None:
        value = peek_string(fetched.content, self._next_path)
        return value if isinstance(value, str) and value else None


def _page_number(url: str | None) -> int | None:
    """The page number a URL asks for (`page` or JSON:API's `page[number]`), if it says."""
    if not url:
        return None
    for name, value in parse_qsl(urlsplit(url).query):
        if name in ("page", "page[number]"):
            return _int(value)
    return None


class LinkHeaderPaginator(_NextLinkPaginator):
    """The next page's URL is in the `Link` header: `<https://...?page=3>; rel="next"`.

    When the header also has a `last` link with a page number, a read that ends before
    that page is short (see `totals`).
    """

    def __init__(
        self,
        rel: str = "next",
        *,
        page_size: int | None = None,
        size_param: str = "per_page",
        max_empty_pages: int = MAX_EMPTY_PAGES,
        total_path: str | None = None,
    ) -> None:
        super().__init__(
            page_size=page_size,
            size_param=size_param,
            max_empty_pages=max_empty_pages,
            total_path=total_path,
        )
        self.rel = rel.lower()
        self._last: int | None = None
        self._at: int | None = None
        self._pages = 0
        self._linked = False
        self._parsed: tuple[str | None, dict[str, str]] = (None, {})

    def _links(self, fetched: Fetched) -> dict[str, str]:
        from ._links import parse_link_header

        header = fetched.headers.get("link")
        if header != self._parsed[0]:
            self._parsed = (header, parse_link_header(header))
        return self._parsed[1]

    def _find_next(self, fetched: Fetched) -> str | None:
        return self._links(fetched).get(self.rel)

    # The Link header arrives before the body: the next URL is known for certain.
    _peek_url = _find_next

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        links = self._links(fetched)
        self._linked = self._linked or bool(links)
        self._pages += 1
        self._at = _page_number(fetched.url)
        if self._at is None and self._pages == 1:
            self._at = 1  # a first request without a page number asks for the first page
        last = _page_number(links.get("last"))
        if last is not None:
            # Some APIs (GitHub) leave `last` off the last page: the latest one counts.
            self._last = last
        super().update_state(fetched, records)

    def totals(self) -> list[Total]:
        found = super().totals()
        if self._last is not None and self._at is not None:
            found.append(Total(self._last, self._at, "the `last` link", "page"))
        return found

    def short_read_hint(self) -> str | None:
        if self._linked:
            return None
        return (
            "the API sent no `Link` header; some send it only when the request names a page: "
            "try `params: {page: 1}` on the resource"
        )


class RelayPaginator(BasePaginator):
    """A GraphQL Relay connection: `edges { node }` and `pageInfo { hasNextPage endCursor }`."""

    def __init__(
        self,
        path: str,
        *,
        cursor_variable: str = "after",
        page_size: int | None = 100,
        size_variable: str = "first",
    ) -> None:
        self.cursor_variable = cursor_variable
        self.page_size = page_size
        self.size_variable = size_variable
        self.cursor: str | None = None
        self._connection = compile_selector(path)
        self._path = path

    def init_request(self, spec: RequestSpec) -> None:
        if self.page_size:
            spec.params[self.size_variable] = self.page_size

    def _page_info(self, body: Any) -> dict[str, Any]:
        connection = self._connection(body)
        info = connection.get("pageInfo") if isinstance(connection, dict) else None
        if not isinstance(info, dict):
            raise PaginationError(f"no pageInfo in the connection at {self._path!r}")
        return info

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        info = self._page_info(fetched.body)
        cursor = info.get("endCursor")
        if info.get("hasNextPage") and cursor == self.cursor:
            raise PaginationError(f"endCursor {cursor!r} did not move; stopping a loop")
        self.cursor = cursor if isinstance(cursor, str) and cursor else None
        self.has_next_page = bool(info.get("hasNextPage")) and self.cursor is not None

    def update_request(self, spec: RequestSpec) -> None:
        spec.params[self.cursor_variable] = self.cursor

    def state(self) -> dict[str, Any] | None:
        return {"cursor": self.cursor} if self.has_next_page else None

    def restore(self, state: dict[str, Any], spec: RequestSpec) -> None:
        cursor = state.get("cursor")
        if not isinstance(cursor, str) or not cursor:
            raise PaginationError(f"bad relay checkpoint {state!r}")
        self.cursor = cursor
        self.init_request(spec)
        spec.params[self.cursor_variable] = cursor

    def asked(self) -> tuple[str, int] | None:
        return (self.size_variable, self.page_size) if self.page_size else None

    def position_param(self) -> str | None:
        return self.cursor_variable

    def default_records(self, body: Any) -> Any:
        connection = self._connection(body)
        if not isinstance(connection, dict):
            return MISSING
        if isinstance(connection.get("edges"), list):
            return [edge.get("node") for edge in connection["edges"] if isinstance(edge, dict)]
        return connection.get("nodes", MISSING)


PaginatorFactory = Callable[..., BasePaginator]

_REGISTRY: dict[str, PaginatorFactory] = {
    "single": SinglePagePaginator,
    "offset": OffsetPaginator,
    "page": PageNumberPaginator,
    "cursor": CursorPaginator,
    "next_url": NextUrlPaginator,
    "link_header": LinkHeaderPaginator,
    "relay": RelayPaginator,
}


def register_paginator(name: str, factory: PaginatorFactory) -> None:
    """Make `paginate: {type: NAME, ...}` build paginators with `factory(**options)`."""
    _REGISTRY[name] = factory


def paginator_types() -> list[str]:
    return sorted(_REGISTRY)


def _import(path: str) -> PaginatorFactory:
    module_name, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise PaginationError(f"cannot import paginator {path!r}: {exc}") from None
    if not (isinstance(factory, type) and issubclass(factory, BasePaginator)):
        raise PaginationError(f"{path!r} is not a BasePaginator subclass")
    return factory


def create_paginator(spec: Any) -> BasePaginator:
    """A fresh paginator from a config model, a `{"type": ...}` dict, a name or an instance."""
    if isinstance(spec, BasePaginator):
        return spec
    if isinstance(spec, str):
        spec = {"type": spec}
    if hasattr(spec, "model_dump"):
        spec = spec.model_dump(by_alias=True)
    if not isinstance(spec, dict):
        raise TypeError(f"cannot build a paginator from {spec!r}")
    options = dict(spec)
    kind = options.pop("type", "single")
    if kind == "custom":
        factory = _import(str(options.pop("class")))
        return factory(**options.pop("options", {}))
    known = _REGISTRY.get(kind)
    if known is None:
        raise PaginationError(f"unknown paginator {kind!r}; known: {', '.join(paginator_types())}")
    return known(**options)
