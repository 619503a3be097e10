"""The values that flow through a read: the request being built, and the pages that come back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

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
    """

    __slots__ = ("_body", "_parse", "response")

    def __init__(
        self,
        body: Any = _UNPARSED,
        response: httpx.Response | None = None,
        *,
        parse: Callable[[httpx.Response], Any] | None = None,
    ) -> None:
        if body is _UNPARSED and (parse is None or response is None):
            raise TypeError("Fetched needs a body, or a response and a parse function")
        self._body = body
        self._parse = parse
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
        return str(self.response.request.url) if self.response is not None else None


@dataclass(slots=True)
class Page:
    """A page of records and where to resume after it.

    `checkpoint` is the paginator's state after this page: pass it back as `resume=` to
    continue with the next page (None once there is nothing more to read). `cursor` is the
    highest value of the incremental field seen so far, through this page.
    """

    records: list[Record]
    number: int
    checkpoint: dict[str, Any] | None = None
    cursor: Any = None
    url: str | None = None
    done: bool = False
    """True on the last page of the read."""

    def __len__(self) -> int:
        return len(self.records)
