"""The ASGI app that serves a `MockApi` over real HTTP (uvicorn, via `SandboxServer`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from ._mock_api import MockApi

__all__ = ["mock_app"]


def mock_app(mock: MockApi) -> ASGIApp:
    """An ASGI app answering every HTTP request from `mock`."""
    from ._mock_api import MockRequest

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        # A repeated header is joined with ", ", as httpx shows it in memory.
        received: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            received[name] = f"{received[name]}, {value}" if name in received else value
        request = MockRequest(
            scope["method"],
            scope["path"],
            tuple(parse_qsl(query, keep_blank_values=True)),
            received,
            b"".join(chunks),
            matched=False,
        )
        answer = mock.handle(request)
        body = answer.body()
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.all_headers().items()
            if k.lower() != "content-length"
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
