"""Refuse requests whose framing a proxy in front could read differently, as ASGI middleware.

A request with both `Content-Length` and `Transfer-Encoding` is the classic request
smuggling shape (RFC 9112 section 6.3): a proxy that trusts one header and a server that
trusts the other disagree on where the body ends, and the rest becomes a second request
nobody checked. The server reads such a request by `Transfer-Encoding` (h11 does), so
this refuses it with 400 and closes the connection, before authentication or routing.
An HTTP version other than 1.0, 1.1, 2 or 3 is refused with 505, and a request line and
headers over `max_head` bytes (16 KiB, h11's own limit) with 431, however the bytes
arrived (h11 enforces its limit only on a head that is still incomplete).

Malformed framing the HTTP parser itself rejects (a negative `Content-Length`, a transfer
coding other than chunked, NUL bytes in headers) never reaches the app: `_protocol.py`
answers those.
"""

from __future__ import annotations

from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from ._envelope import error_response

__all__ = ["HTTP_VERSIONS", "MAX_HEAD", "FramingMiddleware", "framing_problem"]

# h11 reports "1.0"/"1.1" (a request line claiming "2.0" is not HTTP/2); servers that
# speak HTTP/2 or 3 report "2" and "3".
HTTP_VERSIONS = frozenset({"1.0", "1.1", "2", "3"})

MAX_HEAD = 16 * 1024
"""The most bytes of request target and headers a request may have (h11's default)."""


def framing_problem(
    scope: Scope, max_head: int = MAX_HEAD
) -> Literal["version", "head", "smuggling"] | None:
    """What is wrong with a request's framing, first found first: an unknown HTTP version,
    a request line and headers over `max_head` bytes, or Content-Length together with
    Transfer-Encoding; None when nothing is."""
    if scope.get("http_version", "1.1") not in HTTP_VERSIONS:
        return "version"
    length = encoding = False
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4  # ": " and CRLF
        if name == b"content-length":
            length = True
        elif name == b"transfer-encoding":
            encoding = True
    if size > max_head:
        return "head"
    return "smuggling" if length and encoding else None


class FramingMiddleware:
    """400 for `Content-Length` with `Transfer-Encoding`; 505 for unknown HTTP versions;
    431 for a head over `max_head` bytes."""

    def __init__(self, app: ASGIApp, max_head: int = MAX_HEAD) -> None:
        self.app = app
        self.max_head = max_head

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = framing_problem(scope, self.max_head)
        if problem == "version":
            await error_response(
                scope,
                505,
                "This server speaks HTTP/1.1 (and 1.0).",
                details=[{"field": "HTTP version", "issue": "expected HTTP/1.1"}],
                headers={"Connection": "close"},
            )(scope, receive, send)
            return
        if problem == "head":
            await error_response(
                scope,
                431,
                f"The request line and headers are larger than {self.max_head} bytes.",
                details=[{"field": "headers", "issue": f"at most {self.max_head} bytes"}],
                headers={"Connection": "close"},
            )(scope, receive, send)
            return
        if problem == "smuggling":
            await error_response(
                scope,
                400,
                "The request has both Content-Length and Transfer-Encoding; send one of them.",
                details=[{"field": "Transfer-Encoding", "issue": "not with Content-Length"}],
                headers={"Connection": "close"},
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)
