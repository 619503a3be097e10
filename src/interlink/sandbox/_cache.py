"""A cache of rendered list pages, for benchmarks that should measure the client.

The sandbox computes every record from `(seed, id)` on each request, which keeps its memory
flat but costs about 1 ms of server CPU per 100 customers rendered. A benchmark on a
machine whose cores the server shares with the clients then mostly measures the server.
With the cache on, a list answer is rendered once and its bytes are served again for as
long as no record of the app changes; any change (create, PATCH, `/_touch`, `/_reset`, a
delete) moves a store's `version` and empties the cache on the next request, so answers are
exactly those of an app without the cache, only cheaper.

Only the route handler is cached: auth, rate limits, faults and the request counters run
for every request as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ._store import BaseRecordStore

__all__ = ["DEFAULT_CACHE_BYTES", "PageCache"]

# Room for 3,000 pages of 1,000 customers (~335 kB each).
DEFAULT_CACHE_BYTES = 1 << 30


class _CachedResponse(Response):
    """A response replayed from stored status, headers and body (rendered before)."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes):
        self.status_code = status_code
        self.raw_headers = list(raw_headers)
        self.body = body
        self.background = None


@dataclass(frozen=True, slots=True)
class _Page:
    status_code: int
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes


class PageCache:
    """Rendered 200 answers by key, dropped when any of `stores` changes.

    At most `max_bytes` of bodies are kept; past that the least recently served page goes.
    """

    def __init__(
        self, stores: Iterable[BaseRecordStore[Any]], *, max_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.stores = tuple(stores)
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.size = 0
        self._pages: OrderedDict[Hashable, _Page] = OrderedDict()
        self._versions = self._current_versions()

    def _current_versions(self) -> tuple[int, ...]:
        return tuple(store.version for store in self.stores)

    def __len__(self) -> int:
        return len(self._pages)

    def clear(self) -> None:
        self._pages.clear()
        self.size = 0

    async def answer(self, key: Hashable, render: Callable[[], Awaitable[Response]]) -> Response:
        """The stored answer for `key`, or `render()`'s (kept when it is a 200)."""
        versions = self._current_versions()
        if versions != self._versions:
            self.clear()
            self._versions = versions
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
            self.hits += 1
            return _CachedResponse(page.status_code, page.raw_headers, page.body)
        self.misses += 1
        response = await render()
        # Kept only if nothing changed while it was rendered.
        if (
            response.status_code == 200
            and response.background is None
            and self._current_versions() == versions
        ):
            body = bytes(response.body)
            self._keep(key, _Page(response.status_code, list(response.raw_headers), body))
        return response

    def _keep(self, key: Hashable, page: _Page) -> None:
        size = len(page.body)
        if size > self.max_bytes:
            return
        self._pages[key] = page
        self.size += size
        while self.size > self.max_bytes:
            _, oldest = self._pages.popitem(last=False)
            self.size -= len(oldest.body)

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "pages": len(self), "bytes": self.size}

    def reset_counters(self) -> None:
        self.hits = self.misses = 0
