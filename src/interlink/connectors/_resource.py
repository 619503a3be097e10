"""What every resource shares: a name, a client, the read loop and incremental state."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import quote

from interlink.errors import ApiError, NotFoundError, PaginationError, TransportError
from interlink.http import origin_of

from ._cursor import CursorTracker
from ._page import Fetched, Page, Record, RequestSpec
from ._paginators import BasePaginator, create_paginator
from ._reader import Extractor, read_pages
from ._selectors import MISSING, compile_selector

if TYPE_CHECKING:
    from interlink.config import (
        GraphQLResourceConfig,
        RestResourceConfig,
        SoapResourceConfig,
    )
    from interlink.http import ApiClient

__all__ = ["BaseResource", "Resource", "fill_template"]

# Transport errors where nothing answered at the connection's address.
_UNREACHED = ("ConnectError", "ConnectTimeout", "UnsupportedProtocol")

_FIELD = re.compile(r"\{([A-Za-z_][\w.]*)\}")


def fill_template(template: str, values: dict[str, Any], *, what: str) -> str:
    """Replace `{name}` / `{parent.field.sub}` with URL-quoted values."""

    def replace(match: re.Match[str]) -> str:
        path = match.group(1)
        value = compile_selector(path)(values)
        if value is MISSING or value is None:
            raise KeyError(f"{what}: no value for {{{path}}} in {sorted(values)}")
        return quote(str(value), safe="")

    return _FIELD.sub(replace, template)


class Resource(Protocol):
    """Anything records can be read from: `pages()` and `records()` (REST, GraphQL, SOAP,
    child resources)."""

    name: str
    primary_key: str
    last_cursor: Any

    def pages(
        self,
        *,
        since: Any = None,
        resume: dict[str, Any] | None = None,
        limit: int | None = None,
        concurrency: int | None = None,
    ) -> AsyncIterator[Page]: ...

    def records(self, **kwargs: Any) -> AsyncIterator[Record]: ...


class BaseResource(ABC):
    """A readable set of records on one connection, such as `shop.customers`.

    `pages()` streams pages (each with its resume checkpoint and the incremental cursor);
    `records()` streams records. Subclasses say how one page is fetched.
    """

    config: RestResourceConfig | GraphQLResourceConfig | SoapResourceConfig
    nulls_are_empty: ClassVar[bool] = False
    """A null on the way along `records:` is an empty page (SOAP, where zeep makes an
    empty list a null), not a body without the path."""

    def __init__(self, name: str, client: ApiClient) -> None:
        self.name = name
        self.client = client
        self.primary_key = "id"
        self.last_cursor: Any = None
        """The incremental cursor after the last completed read, for callers that store it."""
        self.began: datetime | None = None
        """When the read this one belongs to began, for a read that is part of a larger
        one (a child resource's, for one parent): its cursor's signpost. None: the read
        sets its own, at its first answer."""
        self.said_already: set[str] | None = None
        """The signpost warnings the larger read has given (one of each per read)."""

    @abstractmethod
    def _first_request(self) -> RequestSpec: ...

    @abstractmethod
    async def _fetch(self, spec: RequestSpec) -> Fetched: ...

    def _transform(self) -> Callable[[Any], Record] | None:
        return None

    def _incremental_param(self, spec: RequestSpec, since: Any) -> CursorTracker | None:
        incremental = self.config.incremental
        if incremental is None:
            return None
        start = since if since is not None else incremental.initial
        key = self.primary_key
        if start is not None and incremental.param:
            spec.params[incremental.param] = start
            tracker = CursorTracker(incremental.field, start, primary_key=key, lag=incremental.lag)
        else:
            # No server-side filter: read everything, keep what is not older than the cursor.
            tracker = CursorTracker(
                incremental.field, start, keep_from=start, primary_key=key, lag=incremental.lag
            )
        if self.began is not None:
            tracker.set_signpost(self.began)
        return tracker

    def paginator(self) -> BasePaginator:
        return create_paginator(self.config.paginate)

    def follow(self, url: str) -> str:
        """The URL a read may request, for a URL its paginator (or a checkpoint) gives.

        The connection's credentials go only to its own origin: a link elsewhere stops the
        read with an error that names the link's origin (never its path or query), unless
        the connection lists that origin in `allowed_origins`. The connection's own
        credential is taken out of the URL; it is added again, once, when it is sent.
        """
        client = self.client
        if not client.allows(url):
            raise PaginationError(
                f"{self.name}: the API links to {origin_of(url)}, another origin than the "
                f"connection's ({client.origin}); refusing to follow it, so the connection's "
                f"credentials stay with their origin (list it in `connections.{client.name}."
                "allowed_origins` to trust it)"
            )
        return client.strip_credentials(url)

    async def pages(
        self,
        *,
        since: Any = None,
        resume: dict[str, Any] | None = None,
        limit: int | None = None,
        concurrency: int | None = None,
    ) -> AsyncIterator[Page]:
        """Stream this resource's pages.

        `since`: the incremental cursor to read from (the last `Page.cursor` you stored);
        `resume`: a `Page.checkpoint` to continue an interrupted read; `limit`: stop after
        this many records (the read is then not checked against the API's totals).
        """
        spec = self._first_request()
        tracker = self._incremental_param(spec, since)
        paginator = self.paginator()
        error = self.config.error
        extract = Extractor(
            records=self.config.records,
            paginator=paginator,
            error_path=error.path if error else None,
            error_value=error.value if error else "error",
            error_message_path=error.message_path if error else "message",
            transform=self._transform(),
            resource=self.name,
            redact_url=self.client.redactor.url,
            nulls_are_empty=self.nulls_are_empty,
        )
        first = resume is None or not resume
        try:
            async for page in read_pages(
                self._fetch,
                paginator,
                spec,
                extract,
                resume=resume,
                limit=limit,
                concurrency=concurrency or self.config.concurrency,
                tracker=tracker,
                on_total_mismatch=self.config.on_total_mismatch,
                resource=self.name,
                follow=self.follow,
                key=self.primary_key if _plain_field(self.primary_key) else None,
                said_already=self.said_already,
            ):
                first = False
                if page.done and tracker is not None:
                    self.last_cursor = tracker.value
                yield page
        except ApiError as exc:
            if exc.hint is None:
                exc.hint = self._hint(exc, first)
            raise

    def _hint(self, error: ApiError, first: bool) -> str | None:
        """The key of interlink.yaml to check for `error`: the connection's base URL when
        nothing answered, the resource's path when its first page is not found."""
        connection = self.client.name
        base_url = self.client.redactor.url(self.client.base_url)
        if (
            isinstance(error, TransportError)
            and connection
            and error.message.startswith(_UNREACHED)
        ):
            return f"connections.{connection}.base_url ({base_url})"
        path = getattr(self.config, "path", None)
        if isinstance(error, NotFoundError) and first and isinstance(path, str):
            return f"resources.{self.name}.path ({path!r} under {base_url})"
        return None

    async def records(self, **kwargs: Any) -> AsyncIterator[Record]:
        """Stream records one by one; takes the arguments of `pages()`."""
        async for page in self.pages(**kwargs):
            for record in page.records:
                yield record

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _plain_field(key: str) -> bool:
    """A top-level field name (not a dotted path, a JMESPath or several fields)."""
    return bool(key) and key.replace("_", "").replace("-", "").isalnum()
