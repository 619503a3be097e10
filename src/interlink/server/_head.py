"""HEAD on every GET route, as pure ASGI middleware: the GET's status and headers, no body.

FastAPI registers a `@router.get` route for GET only, so HEAD was a 405. This runs the
request as a GET on a copy of the scope (the server's own scope keeps HEAD, so its access
log and its HTTP layer see the real method) and drops the body on the way out, keeping
`Content-Length` as the GET would have sent it (RFC 9110 section 9.3.2).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadMiddleware"]


class HeadMiddleware:
    """Answer HEAD as GET, without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
