"""Paginators that follow what each page hands over: a cursor, a next URL, a `Link`
header, a Relay `endCursor`. Only the cursor or link decides whether there is a next page;
a cursor or link seen twice, or too many empty pages in a row, stops a loop."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from interlink.errors import PaginationError

from ._page import Fetched, Record, RequestSpec
from ._paginator_base import MAX_EMPTY_PAGES, BasePaginator, BodyTotal, as_int
from ._selectors import MISSING, compile_selector, peek_string
from ._totals import Total

__all__ = [
    "CursorPaginator",
    "LinkHeaderPaginator",
    "NextUrlPaginator",
    "RelayPaginator",
]


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


class _StopWhen:
    """`{path: has_more, equals: false}`: the page whose body has that value is the last."""

    def __init__(self, spec: Mapping[str, Any] | None) -> None:
        self.path = str(spec["path"]) if spec else None
        self.equals = spec.get("equals", False) if spec else None
        self._select = compile_selector(self.path) if self.path else None

    def __bool__(self) -> bool:
        return self._select is not None

    def says_last(self, body: Any) -> bool:
        if self._select is None:
            return False
        value = self._select(body)
        return value is not MISSING and value == self.equals and type(value) is type(self.equals)

    def says_more(self, body: Any) -> bool:
        """Whether the body says in so many words that more pages follow: the other
        boolean than the last page's (`has_more: true` where the last says false)."""
        if self._select is None or type(self.equals) is not bool:
            return False
        value = self._select(body)
        return type(value) is bool and value is not self.equals


class CursorPaginator(BasePaginator):
    """The next page's cursor comes in the body and goes back as a parameter.

    The cursor alone decides whether there is a next page: a filtered scan may send empty
    pages that still carry one. A cursor sent twice stops the read (PaginationError).

    With `cursor_field`, the cursor is that field of the page's last record (Stripe's
    `starting_after=<last id>`), and an empty page ends the read. With `stop_when`
    (`{"path": "has_more", "equals": False}`), a page whose body says so is the last,
    whatever cursor it carries.
    """

    def __init__(
        self,
        cursor_path: str = "next_cursor",
        *,
        cursor_param: str = "cursor",
        cursor_field: str | None = None,
        stop_when: Mapping[str, Any] | None = None,
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
        self._field = compile_selector(cursor_field) if cursor_field else None
        self._field_name = cursor_field
        self._stop = _StopWhen(stop_when)
        self._seen: set[str] = set()
        self._empty = _EmptyRun(max_empty_pages)
        self._body_total = BodyTotal(total_path)

    def init_request(self, spec: RequestSpec) -> None:
        if self.page_size:
            spec.params[self.size_param] = self.page_size

    def _next_cursor(self, fetched: Fetched, records: list[Record]) -> Any:
        if self._field is None:
            return self._cursor(fetched.body)
        return self._field(records[-1]) if records else None

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        self._body_total.update(fetched)
        if self._stop.says_last(fetched.body):
            self.cursor = None
            self.has_next_page = False
            return
        value = self._next_cursor(fetched, records)
        cursor = None if value in (None, "", MISSING) else str(value)
        if cursor is None and self._field is not None and records:
            # Here only an empty page ends the read: a page with records but no cursor to
            # go on from cannot tell whether more follow.
            raise PaginationError(
                f"the page's last record has no `{self._field_name}` to go on from (it is "
                f"{'missing' if value is MISSING else repr(value)}); stopping rather than "
                "calling the read whole"
            )
        if cursor is None and self._stop.says_more(fetched.body):
            # Ending here would call a read whole that the API says is not.
            where = (
                f"the last record's `{self._field_name}`"
                if self._field_name
                else f"`{self._cursor_path}`"
            )
            raise PaginationError(
                f"the page says more records follow (`{self._stop.path}` is "
                f"{str(not self._stop.equals).lower()}) but gives no cursor to go on from "
                f"({where} is missing{': the page is empty' if not records else ''}); "
                "stopping rather than calling the read whole"
            )
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
        if self._field is not None or self._stop:
            return None  # the last record, or a stop flag, is known only once parsed
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
        self._body_total = BodyTotal(total_path)

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
        if isinstance(value, dict) and "href" in value:
            value = value["href"]  # a link object (JSON:API 1.1, HAL): its `href`
        if value is MISSING or value is None or value is False or value in ("", [], {}):
            return None  # no next page: null, false, or an empty value (PHP's `[]`)
        if not isinstance(value, str):
            raise PaginationError(
                f"`{self._next_path}` is {value!r}: neither a URL nor null (nor a link object "
                "with an `href`); stopping rather than calling the read whole"
            )
        return value

    def _peek_url(self, fetched: Fetched) -> str | None:
        value = peek_string(fetched.content, self._next_path)
        return value if isinstance(value, str) and value else None


def _page_number(url: str | None) -> int | None:
    """The page number a URL asks for (`page` or JSON:API's `page[number]`), if it says."""
    if not url:
        return None
    for name, value in parse_qsl(urlsplit(url).query):
        if name in ("page", "page[number]"):
            return as_int(value)
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
    """A GraphQL Relay connection: `edges { node }` and `pageInfo { hasNextPage endCursor }`.

    The connection's `totalCount` (GitHub's, GitLab's `count` through `total_path`), when
    the query asks for it, is the read's announced total: a whole read that ends with
    fewer records is incomplete (see `_totals`), as for REST totals.

    What the read cannot be sure of stops it (PaginationError) rather than ending it as
    whole: `hasNextPage` missing or not a boolean, `hasNextPage: true` without an
    `endCursor`, an `endCursor` sent twice, `max_empty_pages` empty pages in a row that
    still say more follow, a null edge or node, a connection with neither `edges` nor
    `nodes`.
    """

    def __init__(
        self,
        path: str,
        *,
        cursor_variable: str = "after",
        page_size: int | None = 100,
        size_variable: str = "first",
        total_path: str | None = None,
        max_empty_pages: int = MAX_EMPTY_PAGES,
    ) -> None:
        self.cursor_variable = cursor_variable
        self.page_size = page_size
        self.size_variable = size_variable
        self.cursor: str | None = None
        self._connection = compile_selector(path)
        self._path = path
        self._body_total = BodyTotal(total_path)
        self._total_count: int | None = None
        self._seen: set[str] = set()
        self._empty = _EmptyRun(max_empty_pages)

    def init_request(self, spec: RequestSpec) -> None:
        if self.page_size:
            spec.params[self.size_variable] = self.page_size

    def _page_info(self, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The connection and its pageInfo."""
        connection = self._connection(body)
        info = connection.get("pageInfo") if isinstance(connection, dict) else None
        if not isinstance(info, dict):
            raise PaginationError(f"no pageInfo in the connection at {self._path!r}")
        return connection, info

    def update_state(self, fetched: Fetched, records: list[Record]) -> None:
        connection, info = self._page_info(fetched.body)
        if self._body_total.path is not None:
            self._body_total.update(fetched)
        else:
            count = as_int(connection.get("totalCount"))
            if count is not None and count >= 0:
                self._total_count = count
        more = info.get("hasNextPage")
        if type(more) is not bool:
            raise PaginationError(
                f"pageInfo.hasNextPage of the connection at {self._path!r} is "
                f"{'missing' if more is None else repr(more)}, not true or false: ask for "
                "`pageInfo { hasNextPage endCursor }` in the query"
            )
        value = info.get("endCursor")
        cursor = value if isinstance(value, str) and value else None
        if not more:
            self.cursor, self.has_next_page = cursor, False
            return
        if cursor is None:
            raise PaginationError(
                f"the connection at {self._path!r} says more records follow (hasNextPage "
                f"is true) but gives no endCursor to go on from (it is {value!r}); "
                "stopping rather than calling the read whole"
            )
        if cursor in self._seen or cursor == self.cursor:
            raise PaginationError(f"the API sent endCursor {cursor!r} twice; stopping a loop")
        self._seen.add(cursor)
        self._empty.update(records)
        self.cursor, self.has_next_page = cursor, True

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

    def totals(self) -> list[Total]:
        if self._body_total.path is not None:
            return self._body_total.totals()
        if self._total_count is None:
            return []
        return [Total(self._total_count, None, f"`{self._path}.totalCount`")]

    def default_records(self, body: Any) -> Any:
        connection = self._connection(body)
        if not isinstance(connection, dict):
            return MISSING
        if isinstance(connection.get("edges"), list):
            records = [
                edge.get("node") if isinstance(edge, dict) else None for edge in connection["edges"]
            ]
            where = "edges"
        elif isinstance(connection.get("nodes"), list):
            records, where = connection["nodes"], "nodes"
        else:
            raise PaginationError(
                f"the connection at {self._path!r} has neither `edges` nor `nodes`: ask "
                "for `edges { node { ... } }` or `nodes { ... }` in the query"
            )
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                why = " (GraphQL nulls an item it could not resolve)" if record is None else ""
                raise PaginationError(
                    f"the connection at {self._path!r} has {record!r} at {where}[{index}] "
                    f"where a record (an object) should be{why}; stopping rather than "
                    "leaving it out"
                )
        return records
