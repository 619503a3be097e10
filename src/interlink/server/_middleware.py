"""Request ids, the last-resort error answer and the body-size limit, as pure ASGI middleware.

Each piece is `__init__(app, ...)` plus `async __call__(scope, receive, send)` and passes
anything that is not an HTTP request straight through (starlette's `TrustedHostMiddleware`
shape). The order `create_app` stacks them in, outermost first:

```
ClientAddressMiddleware    the client behind `server.trusted_proxies`, _proxies.py
RequestIdMiddleware        X-Request-ID in, meta.request_id and X-Request-ID out
SecurityHeadersMiddleware  nosniff, no-store, CSP, frame denial on every answer, _security.py
UnhandledErrorMiddleware   a bug anywhere below -> 500 INTERNAL_ERROR, logged, no details
FramingMiddleware          400 Content-Length with Transfer-Encoding, 431, 505, _framing.py
HeadMiddleware             HEAD answered as GET without the body, _head.py
ApiKeyMiddleware           401, 429 per key and route (per address without a key), 403,
                           the rate-limit headers on every answer below it, _auth.py
BodyLimitMiddleware        413 before the app reads a byte too many
FastAPI                    routing (no slash redirects), validation, the routes
```

Below all of them, `_protocol.EnvelopeH11Protocol` answers what uvicorn's HTTP parser
refuses before any of this runs.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._envelope import error_response, new_request_id, request_id, sane_request_id

__all__ = ["BodyLimitMiddleware", "RequestIdMiddleware", "UnhandledErrorMiddleware"]

log = logging.getLogger("interlink.server")


class RequestIdMiddleware:
    """Give every request an id: the client's sane `X-Request-ID`, else `req_<random>`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id")
        rid = incoming if incoming is not None and sane_request_id(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        await self.app(scope, receive, send_with_id)


class UnhandledErrorMiddleware:
    """Answer an exception nothing else handled with a generic 500 envelope and log it.

    The client sees only "internal error" and the request id; the log has the traceback
    under that same id, so the two can be matched without leaking internals.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            rid = request_id(scope)
            log.exception("unhandled error in %s %s [%s]", scope["method"], scope["path"], rid)
            if started:
                raise  # too late for an error answer; the server closes the connection
            # The request's rate-limit headers, when it got as far as spending one.
            limits = scope.get("state", {}).get("rate_limit_headers")
            response = error_response(
                scope,
                500,
                f"Internal error; quote request id {rid} when reporting it.",
                headers=limits if isinstance(limits, dict) else None,
            )
            await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over `max_body` bytes with 413, before the app parses anything.

    A `Content-Length` over the limit is refused at once, without reading the body. A
    chunked body is read up to the limit, then refused; one within the limit is handed to
    the app as it arrived. Either way the app never sees a byte past the limit.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await error_response(
                    scope,
                    400,
                    "Content-Length is not a number.",
                    details=[{"field": "Content-Length", "issue": "expected digits"}],
                )(scope, receive, send)
                return
            if int(length) > self.max_body:
                await self._refuse(scope, receive, send)
                return
            if int(length) == 0:
                await self.app(scope, receive, send)
                return
        elif "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body at all
            return
        try:
            body = await self._read(receive)
        except _TooLarge:
            await self._refuse(scope, receive, send)
            return
        if body is None:
            return  # the client went away mid-body: nobody to answer
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            scope,
            413,
            f"The request body is larger than the limit of {self.max_body} bytes.",
            details=[{"field": "body", "issue": f"at most {self.max_body} bytes"}],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
