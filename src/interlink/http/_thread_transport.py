"""`ThreadTransport`: blocking HTTP/1.1 connections (`Http11Pool`, over the standard
library's `http.client`), driven from the event loop by a few worker threads.

A run that sends a handful of requests should not pay for aiohttp's imports (~0.1 s; its
connector module builds two TLS contexts at import, each loading the system's CA
bundle): `http.client` comes with Python, and its socket reads release the GIL, so a page
read on a worker thread overlaps the loop's parsing of the page before as aiohttp's
would. It is also the cheapest reader of a large answer there is in pure Python (about a
fifth of httpcore's CPU; see `_http11_pool`). What threads do poorly is many small
requests at once, and `AutoTransport` moves to aiohttp when a client asks for that.

- TLS: the context with the system's CA bundle (`ssl.create_default_context()`, as
  aiohttp uses) is built when the first `https://` connection opens; plain `http://`
  requests never build one.
- Workers are daemon threads, started as requests wait for one (up to
  `max_connections`). A request cannot be interrupted once it is on the socket: a
  cancelled request's thread finishes it (bounded by its timeouts) and its answer is
  dropped, and the process may exit meanwhile; a Ctrl-C never waits for a read timeout.
  `aclose` closes the pool's connections at once, or when the last request out ends.
- Responses come back fully read with the body still encoded, exactly as from
  `AiohttpTransport`; errors are httpx's.
- `quiet_httpcore` serves the `httpx` transport, which is httpcore's: httpcore's DEBUG
  trace prints every answer's raw headers, unmasked (a `Link` header that carries a
  query API key, a `Set-Cookie`), so it keeps those loggers at INFO; interlink logs its
  requests itself, masked (`-v`, `-vv`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import httpx

from ._http11_pool import Http11Pool

__all__ = ["ThreadTransport", "quiet_httpcore"]

_STOP = object()


def quiet_httpcore() -> None:
    """Keep httpcore's loggers at INFO or above: its DEBUG trace logs raw headers."""
    logger = logging.getLogger("httpcore")
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)


class _Workers:
    """Daemon threads taking calls from one queue; a new thread starts when more calls
    wait or run than there are threads, up to `limit`."""

    def __init__(self, limit: int, name: str) -> None:
        self._limit = limit
        self._name = name
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = 0
        self._busy = 0
        self._lock = threading.Lock()

    @property
    def threads(self) -> int:
        """How many worker threads have started (and not been told to stop)."""
        return self._threads

    def submit(
        self, loop: asyncio.AbstractEventLoop, call: Callable[[], Any]
    ) -> asyncio.Future[Any]:
        """Run `call` on a worker; the future settles on `loop` with its result or error."""
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._busy += 1
            start = self._busy > self._threads and self._threads < self._limit
            if start:
                self._threads += 1
                number = self._threads
        if start:
            threading.Thread(target=self._work, name=f"{self._name}-{number}", daemon=True).start()
        self._calls.put((loop, future, call))
        return future

    def _work(self) -> None:
        while True:
            item = self._calls.get()
            if item is _STOP:
                return
            loop, future, call = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = call()
            except BaseException as exc:
                error = exc
            # Idle again before the answer is handed over: the next call, sent as soon as
            # the answer arrives, must find this worker free rather than start another.
            with self._lock:
                self._busy -= 1
            _settle(loop, future, result, error)
            # An idle worker holds nothing: not the last answer's body, nor its request.
            del item, loop, future, call, result, error

    def stop(self) -> None:
        """Each worker ends after the call it is running (queued calls run first)."""
        with self._lock:
            threads, self._threads = self._threads, 0
        for _ in range(threads):
            self._calls.put(_STOP)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.done():  # the awaiting task was cancelled: the answer is dropped
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop has closed: no one waits for this answer any more
        pass


class ThreadTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through `http.client` connections (`Http11Pool`) on worker
    threads."""

    def __init__(self, *, max_connections: int = 32, keepalive_expiry: float = 15.0) -> None:
        self._max_connections = max_connections
        self._pool = Http11Pool(max_idle=max_connections, keepalive_expiry=keepalive_expiry)
        self._workers = _Workers(max_connections, "interlink-http")
        self._lock = threading.Lock()
        self._closed = False
        self._out = 0

    @property
    def max_connections(self) -> int:
        """How many requests the pool sends at once (the rate-limit gate reads it)."""
        return self._max_connections

    @property
    def workers(self) -> int:
        """How many worker threads are running."""
        return self._workers.threads

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.TransportError("the transport is closed", request=request)
        if not isinstance(request.stream, httpx.SyncByteStream):
            await request.aread()  # an async body is read here; the thread sends bytes
        loop = asyncio.get_running_loop()
        response: httpx.Response = await self._workers.submit(loop, lambda: self._send(request))
        return response

    def _send(self, request: httpx.Request) -> httpx.Response:
        """One request on a worker thread, its body read whole."""
        with self._lock:
            if self._closed:  # closed while the request waited for a worker
                raise httpx.TransportError("the transport is closed", request=request)
            self._out += 1
        try:
            return self._pool.send(request)
        finally:
            with self._lock:
                self._out -= 1
                last = self._closed and self._out == 0
            if last:
                self._pool.close()

    async def aclose(self) -> None:
        """Closes the pools now, or when the last request out ends: a connection still
        being opened for one would otherwise escape the close and stay open."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = self._out == 0
        self._workers.stop()
        if idle:
            self._pool.close()
