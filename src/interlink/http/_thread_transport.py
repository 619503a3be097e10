"""`ThreadTransport`: httpx's own blocking transport, driven from the event loop by a few
worker threads.

A run that sends a handful of requests should not pay for aiohttp's imports (~0.1 s; its
connector module builds two TLS contexts at import, each loading the system's CA
bundle): httpx's blocking transport comes with httpx, and its socket reads release the
GIL, so a page read on a worker thread overlaps the loop's parsing of the page before as
aiohttp's would. What threads do poorly is many small requests at once, and
`AutoTransport` moves to aiohttp when a client asks for that.

- TLS: plain `http://` and `https://` requests go to two pools. The TLS pool, and its
  context with the system's CA bundle (`ssl.create_default_context()`, as aiohttp uses),
  is built when the first `https://` request is sent; the plain pool gets a context with
  no CA at all, so a TLS handshake through it could never pass verification.
- Workers are daemon threads, started as requests wait for one (up to
  `max_connections`). A request cannot be interrupted once it is on the socket: a
  cancelled request's thread finishes it (bounded by its timeouts) and its answer is
  dropped, and the process may exit meanwhile; a Ctrl-C never waits for a read timeout.
  `aclose` closes the pools at once, or when the last request out ends.
- Responses come back fully read with the body still encoded, exactly as from
  `AiohttpTransport`; httpx's exceptions come straight from httpx.
- httpcore's DEBUG trace prints every answer's raw headers, unmasked (a `Link` header
  that carries a query API key, a `Set-Cookie`), so `quiet_httpcore` keeps its loggers
  at INFO; interlink logs its requests itself, masked (`-v`, `-vv`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import ssl
import threading
from collections.abc import Callable
from typing import Any

import httpx

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


def _no_tls() -> ssl.SSLContext:
    """A client context that trusts no certificate: the plain pool's, never used."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class ThreadTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through `httpx.HTTPTransport` pools on worker threads."""

    def __init__(self, *, max_connections: int = 32, keepalive_expiry: float = 15.0) -> None:
        self._max_connections = max_connections
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        self._pools: dict[bool, httpx.HTTPTransport] = {}
        quiet_httpcore()
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

    def _pool(self, tls: bool) -> httpx.HTTPTransport:
        pool = self._pools.get(tls)
        if pool is None:
            context = ssl.create_default_context() if tls else _no_tls()
            pool = self._pools[tls] = httpx.HTTPTransport(verify=context, limits=self._limits)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.TransportError("the transport is closed", request=request)
        if not isinstance(request.stream, httpx.SyncByteStream):
            await request.aread()  # an async body is read here; the thread sends bytes
        pool = self._pool(request.url.scheme == "https")
        loop = asyncio.get_running_loop()
        response: httpx.Response = await self._workers.submit(
            loop, lambda: self._send(pool, request)
        )
        return response

    def _send(self, pool: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        """One request on a worker thread, its body read whole."""
        with self._lock:
            if self._closed:  # closed while the request waited for a worker
                raise httpx.TransportError("the transport is closed", request=request)
            self._out += 1
        try:
            return _read(pool.handle_request(request), request)
        finally:
            with self._lock:
                self._out -= 1
                last = self._closed and self._out == 0
            if last:
                self._close_pools()

    def _close_pools(self) -> None:
        for pool in self._pools.values():
            pool.close()

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
            self._close_pools()


def _read(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    """The answer with its body read whole, its connection handed back."""
    try:
        assert isinstance(response.stream, httpx.SyncByteStream)
        content = b"".join(response.stream)
    finally:
        response.close()
    return httpx.Response(
        response.status_code,
        headers=response.headers.raw,
        content=content,
        request=request,
        extensions={
            "http_version": response.extensions.get("http_version", b"HTTP/1.1"),
            "reason_phrase": response.extensions.get("reason_phrase", b""),
        },
    )
