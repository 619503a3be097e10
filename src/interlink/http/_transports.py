"""Transports: the bottom of the HTTP stack, where bytes meet sockets.

`AiohttpTransport` is an httpx transport that sends through aiohttp's connection pool:
httpx's own async transport is many times slower on small concurrent requests
(docs/benchmarks.md), while httpx's Request/Response/Auth API stays the interface for
everything above. aiohttp's exceptions become httpx's here, at this one boundary. The
default, `AutoTransport` (_auto_transport.py), sends a client's first requests through
httpx's blocking transport on threads (`ThreadTransport`) and moves to aiohttp when the
client has many requests in flight.

aiohttp (and yarl) load when the first request is sent, not with `interlink.http`: a
command that builds no client (`check`, `runs`, `db upgrade`, a test with a
`MockTransport`) does not pay their ~0.1 s of imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import httpx

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport", "TransportName", "create_transport"]

TransportName = Literal["auto", "aiohttp", "httpx", "threads"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with an aiohttp `ClientSession`; responses come back fully read.

    Redirects are never followed (a redirect to an internal address is an SSRF path), and
    the body is left compressed for httpx to decode, so the response behaves exactly as one
    from httpx's own transport.
    """

    def __init__(self, *, max_connections: int = 32, keepalive_expiry: float = 15.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    @property
    def max_connections(self) -> int:
        """How many requests the pool sends at once (the rate-limit gate reads it)."""
        return self._max_connections

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=self._keepalive_expiry,
            enable_cleanup_closed=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout") or {}
        key = (spec.get("connect"), spec.get("read"), spec.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            import aiohttp

            connect, read, pool = key
            whole_connect = None if connect is None or pool is None else connect + pool
            timeout = aiohttp.ClientTimeout(
                total=None, connect=whole_connect, sock_connect=connect, sock_read=read
            )
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        aiohttp, url_type = _aiohttp()
        body = request.content if request.method not in ("GET", "HEAD") else None
        try:
            async with session.request(
                request.method,
                url_type(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=self._timeout(request),
                compress=None,
            ) as response:
                content = await response.read()
                return httpx.Response(
                    response.status,
                    headers=response.raw_headers,
                    content=content,
                    request=request,
                    extensions={
                        "http_version": b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode("ascii", "replace"),
                    },
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except (TimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(
                str(exc) or "server disconnected without sending a response", request=request
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        except aiohttp.ClientResponseError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except (aiohttp.ClientOSError, ConnectionError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _aiohttp() -> tuple[Any, Any]:
    """aiohttp and yarl's URL, imported once (`_open` has imported them by now)."""
    import aiohttp
    from yarl import URL

    return aiohttp, URL


def create_transport(
    name: TransportName = "auto", *, max_connections: int = 32
) -> httpx.AsyncBaseTransport:
    """The transport a connection's `transport:` setting names."""
    if name == "auto":
        from ._auto_transport import AutoTransport

        return AutoTransport(max_connections=max_connections)
    if name == "aiohttp":
        return AiohttpTransport(max_connections=max_connections)
    if name == "threads":
        from ._thread_transport import ThreadTransport

        return ThreadTransport(max_connections=max_connections)
    if name == "httpx":
        from ._thread_transport import quiet_httpcore

        quiet_httpcore()
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        return httpx.AsyncHTTPTransport(limits=limits)
    raise ValueError(f"unknown transport {name!r}; expected auto, aiohttp, threads or httpx")
