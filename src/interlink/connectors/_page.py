"""The values that flow through a read: the request being built, and the pages that come back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from interlink.http import url_before_auth

__all__ = ["Fetched", "Page", "Record", "RequestSpec"]

Record = dict[str, Any]


@dataclass(slots=True)
class RequestSpec:
    """What the next page request asks for; paginators change it, never send it.

    `params` are query parameters for REST, variables for GraphQL and arguments for SOAP,
    so one paginator works for all three. `url` is a path relative to the connection's base
    URL, or a full URL (a next link).
    """

    url: str
    params: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> RequestSpec:
        return RequestSpec(self.url, dict(self.params))


_UNPARSED: Any = object()


class Fetched:
    """One page as it came back: the response (for HTTP APIs) and its decoded body.

    The body may be decoded lazily (`parse`), so the reader can ask the paginator for the
    next request from the headers or raw bytes before paying for the JSON parse.

    `url` is the request's URL as it was before auth (never an API key in the query).
    A paginator that follows links turns them into the URL to request with `resolve`:
    absolute, and without the connection's credentials (`clean`, given by the resource).
    """

    __slots__ = ("_body", "_clean", "_parse", "response")

    def __init__(
        self,
        body: Any = _UNPARSED,
        response: httpx.Response | None = None,
        *,
        parse: Callable[[httpx.Response], Any] | None = None,
        clean: Callable[[str], str] | None = None,
    ) -> None:
        if body is _UNPARSED and (parse is None or response is None):
            raise TypeError("Fetched needs a body, or a response and a parse function")
        self._body = body
        self._parse = parse
        self._clean = clean
        self.response = response

    @property
    def body(self) -> Any:
        if self._body is _UNPARSED:
            assert self._parse is not None and self.response is not None
            self._body = self._parse(self.response)
        return self._body

    @property
    def content(self) -> bytes:
        """The raw body bytes (empty when the page did not come over HTTP)."""
        return self.response.content if self.response is not None else b""

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers if self.response is not None else {}

    @property
    def url(self) -> str | None:
        """The URL this page was requested at, as it was before auth was applied."""
        if self.response is None:
            return None
        return str(url_before_auth(self.response.request))

    def resolve(self, link: str) -> str:
        """The URL to request for a link this page hands over (a next page's URL).

        Relative links are resolved against the page's URL; the connection's own
        credential (a query API key the server echoed into its links) is taken out, so
        what is stored and followed never holds it. Whether the link may be followed at
        all (its origin) is the reader's decision.
        """
        url = self.url
        if url:
            link = urljoin(url, link)
        return self._clean(link) if self._clean is not None else link


@dataclass(slots=True)
class Page:
    """A page of records and where to resume after it.

    `checkpoint` is the paginator's state after this page: pass it back as `resume=` to
    continue with the next page (None once there is nothing more to read; an empty dict
    means "a read is under way: start it again from the beginning"). `cursor` is the
    highest value of the incremental field seen so far, through this page, before the
    read's signpost (the moment it began: a record changed later does not move it). `url` is where
    the page was read, as it was before auth (no credential in it).
    """

    records: list[Record]
    number: int
    checkpoint: dict[str, Any] | None = None
    cursor: Any = None
    url: str | None = None
    done: bool = False
    """True on the last page of the read."""
    complete: bool = True
    """False on the last page of a read known to have ended short of what the API
    announced (`on_total_mismatch: warn`): do not move the cursor past it, and do not take
    records missing from it as deleted."""
    warnings: list[str] = field(default_factory=list)
    """What looked wrong while reading this page (a page larger than asked for, a read
    short of its total under `on_total_mismatch: warn`), in plain sentences."""
    seen_to: Any = None
    """The highest value of the incremental field seen so far, past the read's signpost
    too (`cursor` stops before it: see `_cursor`)."""

    def __len__(self) -> int:
        return len(self.records)
