"""The values that flow through a read: the request being built, and the pages that come back."""

from __future__ import annotations

from collections.abc import Mapping
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


@dataclass(slots=True)
class Fetched:
    """One page as it came back: the decoded body and, for HTTP APIs, the response."""

    body: Any
    response: httpx.Response | None = None

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
