"""`AutoTransport`, the default: threads for a client's first requests, aiohttp once the
client shows it needs a pool for many requests at once.

Measured (docs/benchmarks.md): a process that sends one request starts ~0.05-0.09 s
sooner without aiohttp's imports, and pages of 1,000 records read as fast through
`ThreadTransport` at up to 4 in flight; 16 small requests at once go ~3.7x faster
through aiohttp. So a client sends through threads until it has more than
`THREADS_UP_TO` requests in flight at once, or has sent `THREADS_FOR` requests (a long
read earns back aiohttp's imports in its faster per-page parsing), and through aiohttp
from then on. Requests already sent finish where they are; `aclose` closes both.
"""

from __future__ import annotations

import httpx

from ._thread_transport import ThreadTransport
from ._transports import AiohttpTransport

__all__ = ["THREADS_FOR", "THREADS_UP_TO", "AutoTransport"]

THREADS_UP_TO = 4
"""Most requests in flight at once that stay on threads."""

THREADS_FOR = 256
"""Requests a client sends through threads before it moves to aiohttp anyway."""


class AutoTransport(httpx.AsyncBaseTransport):
    """Threads first, aiohttp when there are many requests (see the module)."""

    def __init__(self, *, max_connections: int = 32, keepalive_expiry: float = 15.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._threads: ThreadTransport | None = None
        self._aiohttp: AiohttpTransport | None = None
        self._in_flight = 0
        self._sent = 0

    @property
    def max_connections(self) -> int:
        """How many requests the pool sends at once (the rate-limit gate reads it)."""
        return self._max_connections

    @property
    def using(self) -> str:
        """Where the next request goes: "threads" or "aiohttp"."""
        return "aiohttp" if self._aiohttp is not None else "threads"

    def _next(self) -> httpx.AsyncBaseTransport:
        if self._aiohttp is not None:
            return self._aiohttp
        if self._in_flight >= THREADS_UP_TO or self._sent >= THREADS_FOR:
            self._aiohttp = AiohttpTransport(
                max_connections=self._max_connections, keepalive_expiry=self._keepalive_expiry
            )
            return self._aiohttp
        if self._threads is None:
            self._threads = ThreadTransport(
                max_connections=self._max_connections, keepalive_expiry=self._keepalive_expiry
            )
        return self._threads

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._next()
        self._sent += 1
        self._in_flight += 1
        try:
            return await transport.handle_async_request(request)
        finally:
            self._in_flight -= 1

    async def aclose(self) -> None:
        threads, self._threads = self._threads, None
        aiohttp, self._aiohttp = self._aiohttp, None
        try:
            if threads is not None:
                await threads.aclose()
        finally:
            if aiohttp is not None:
                await aiohttp.aclose()
