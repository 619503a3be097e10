"""HTTP/1.1 through the standard library's `http.client`, with keep-alive connections
kept per origin: what `ThreadTransport`'s workers send their requests through.

Why not httpx's own blocking transport (httpcore and h11): reading a 330 kB answer took
it about 1.1 ms of CPU on a 2-core machine, `http.client` about 0.2 ms (measured: 100
pages of the sandbox's customers over 127.0.0.1, docs/benchmarks.md). A worker's CPU is
the event loop's too (one GIL), so it was about a sixth of a 100,000-record run. urllib3
has sent requests through `http.client` connections kept in a pool for years; this is
that, small, for one process's worker threads.

- A connection carries one request at a time. Idle ones wait per origin (scheme, host,
  port), the most recent first, at most `max_idle` of them in all, and are closed after
  `keepalive_expiry` seconds idle or when the server says `Connection: close`.
- An idle connection is checked before it is reused: a socket that reads as ready was
  closed by the server (or holds bytes nobody asked for), and is dropped. A server may
  still close it in the instant after the check: a request whose reused connection
  turns out closed before a byte of the answer came is sent again once, on a new
  connection, when its method is idempotent; else it fails as httpx's
  `RemoteProtocolError`, as it does through httpcore, and the retry policy decides.
- Timeouts are httpx's per-request `timeout` extension: `connect` to open the connection
  (and its TLS handshake), `write` to send the request, `read` for each wait on the
  answer. None waits for ever.
- Errors are httpx's: ConnectTimeout, ConnectError (a TLS certificate refused
  included), WriteTimeout, WriteError, ReadTimeout, ReadError, RemoteProtocolError.
- The request body is sent whole with its length (a body httpx would stream in chunks
  was read already); the answer comes back read whole, de-chunked but still
  content-encoded: httpx decodes it, exactly as from the other transports.
- TLS: the context is built by `tls_context` when the first `https://` request opens
  its connection, and verifies the host name the URL names.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["Http11Pool"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

Origin = tuple[str, str, int]


class _Stale(Exception):
    """A reused connection the server had closed: nothing of the answer arrived."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class _Connection:
    __slots__ = ("http", "idle_since")

    def __init__(self, connection: http.client.HTTPConnection) -> None:
        self.http = connection
        self.idle_since = 0.0

    def close(self) -> None:
        self.http.close()

    def dropped(self) -> bool:
        """Whether the server closed it (or sent what no request asked for) while idle."""
        sock = self.http.sock
        if sock is None:
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class Http11Pool:
    """Sends httpx requests over `http.client` connections kept alive per origin.

    Thread-safe: each `send` takes a connection of its own for the request's length.
    """

    def __init__(
        self,
        *,
        tls_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
        max_idle: int = 32,
        keepalive_expiry: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tls_factory = tls_context
        self._tls: ssl.SSLContext | None = None
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._clock = clock
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._idle_count = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def idle(self) -> int:
        """How many connections wait for a request."""
        return self._idle_count

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and return its answer, read whole; see the module docstring."""
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"the URL's scheme is {scheme!r}; only http and https are sent",
                request=request,
            )
        origin: Origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        body = request.read()
        headers = _request_headers(request, body)
        target = url.raw_path.decode("ascii")
        resend = request.method in _IDEMPOTENT
        while True:
            connection = self._checkout(origin)
            reused = connection is not None
            if connection is None:
                connection = self._open(origin, request, timeouts.get("connect"))
            try:
                response, keep = _exchange(
                    connection.http, request, target, headers, body, timeouts, reused=reused
                )
            except _Stale as stale:
                connection.close()
                if resend:
                    resend = False  # once: a new connection that fails so is no stale one
                    continue
                raise stale.error from stale.__cause__
            except BaseException:
                connection.close()
                raise
            if keep:
                self._checkin(origin, connection)
            else:
                connection.close()
            return response

    def close(self) -> None:
        """Close every idle connection; one out now is closed when it comes back."""
        with self._lock:
            self._closed = True
            idle = [c for waiting in self._idle.values() for c in waiting]
            self._idle.clear()
            self._idle_count = 0
        for connection in idle:
            connection.close()

    # -- the pool ----------------------------------------------------------------------

    def _checkout(self, origin: Origin) -> _Connection | None:
        """The most recent idle connection to `origin` still open, or None."""
        expired: list[_Connection] = []
        found: _Connection | None = None
        now = self._clock()
        with self._lock:
            waiting = self._idle.get(origin)
            while waiting:
                connection = waiting.pop()
                self._idle_count -= 1
                if now - connection.idle_since > self._expiry:
                    expired.append(connection)
                    continue
                found = connection
                break
        for connection in expired:
            connection.close()
        if found is not None and found.dropped():
            found.close()
            return self._checkout(origin)
        return found

    def _checkin(self, origin: Origin, connection: _Connection) -> None:
        connection.idle_since = self._clock()
        oldest: _Connection | None = None
        with self._lock:
            if self._closed:
                oldest = connection
            else:
                self._idle.setdefault(origin, deque()).append(connection)
                self._idle_count += 1
                if self._idle_count > self._max_idle:
                    oldest = self._drop_oldest()
        if oldest is not None:
            oldest.close()

    def _drop_oldest(self) -> _Connection:
        """Take the connection idle longest out of the pool (the lock is held)."""
        origin = min(
            (o for o, waiting in self._idle.items() if waiting),
            key=lambda o: self._idle[o][0].idle_since,
        )
        waiting = self._idle[origin]
        oldest = waiting.popleft()
        if not waiting:
            del self._idle[origin]
        self._idle_count -= 1
        return oldest

    def _open(self, origin: Origin, request: httpx.Request, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        connection: http.client.HTTPConnection
        if scheme == "https":
            with self._lock:
                if self._tls is None:
                    self._tls = self._tls_factory()
                context = self._tls
            connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except OSError as exc:  # refused, unreachable, no such host, TLS refused
            connection.close()
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return _Connection(connection)


def _request_headers(request: httpx.Request, body: bytes) -> list[tuple[bytes, bytes]]:
    """The request's headers as sent: a body is sent whole, so with its length."""
    headers = request.headers.raw
    if any(name.lower() == b"transfer-encoding" for name, _ in headers):
        headers = [
            (name, value)
            for name, value in headers
            if name.lower() not in (b"transfer-encoding", b"content-length")
        ]
        headers.append((b"Content-Length", str(len(body)).encode("ascii")))
    return headers


def _exchange(
    connection: http.client.HTTPConnection,
    request: httpx.Request,
    target: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    timeouts: dict[str, float | None],
    *,
    reused: bool,
) -> tuple[httpx.Response, bool]:
    """Send the request on `connection` and read its answer; returns it and whether the
    connection may carry another request."""
    sock = connection.sock
    assert sock is not None
    try:
        sock.settimeout(timeouts.get("write"))
        connection.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders(body or None)
    except TimeoutError as exc:
        raise httpx.WriteTimeout(str(exc) or "write timed out", request=request) from exc
    except OSError as exc:
        error = httpx.WriteError(str(exc) or type(exc).__name__, request=request)
        if reused:
            raise _Stale(error) from exc
        raise error from exc
    answer: http.client.HTTPResponse | None = None
    try:
        sock.settimeout(timeouts.get("read"))
        answer = connection.getresponse()
        content = answer.read()
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
        if answer is None:
            protocol = httpx.RemoteProtocolError(
                "the server disconnected without sending a response", request=request
            )
            if reused:
                raise _Stale(protocol) from exc
            raise protocol from exc
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except http.client.IncompleteRead as exc:
        raise httpx.RemoteProtocolError(
            f"the server closed the connection {len(exc.partial)} bytes into an answer it "
            "announced longer",
            request=request,
        ) from exc
    except http.client.HTTPException as exc:  # a status line or header past parsing
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    response = httpx.Response(
        answer.status,
        headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.getheaders()],
        content=content,
        request=request,
        extensions=_extensions(answer),
    )
    return response, not answer.will_close


def _extensions(answer: http.client.HTTPResponse) -> dict[str, Any]:
    return {
        "http_version": b"HTTP/1.0" if answer.version == 10 else b"HTTP/1.1",
        "reason_phrase": (answer.reason or "").encode("ascii", "replace"),
    }
