"""Each middleware alone, around a tiny app (starlette's habit for its own middleware)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.server._middleware import (
    BodyLimitMiddleware,
    RequestIdMiddleware,
    UnhandledErrorMiddleware,
)


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"size": len(body), "head": body[:10].decode()})


async def boom(request: Request) -> JSONResponse:
    raise ValueError("internal detail")


def client_for(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def tiny(*wrap) -> Starlette:
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/boom", boom)])
    for middleware, kwargs in reversed(wrap):
        app.add_middleware(middleware, **kwargs)
    return app


async def test_body_limit_hands_the_whole_body_on_when_within_the_limit():
    app = tiny((BodyLimitMiddleware, {"max_body": 300}))

    async def parts():
        for _ in range(3):
            yield b"x" * 100

    async with client_for(app) as client:
        streamed = await client.post("/echo", content=parts())
        assert streamed.json() == {"size": 300, "head": "x" * 10}
        sized = await client.post("/echo", content=b"y" * 300)
        assert sized.json()["size"] == 300
        empty = await client.post("/echo")
        assert empty.json()["size"] == 0
        over = await client.post("/echo", content=b"z" * 301)
        assert over.status_code == 413 and over.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_body_limit_stops_when_the_client_disconnects():
    app = tiny((BodyLimitMiddleware, {"max_body": 1000}))
    sent = []

    async def receive():
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": b"abc", "more_body": True}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/echo",
        "headers": [(b"transfer-encoding", b"chunked")],
        "query_string": b"",
    }
    await BodyLimitMiddleware(app, max_body=1000)(scope, receive, send)
    assert sent == [1]  # nothing answered: nobody is there


@pytest.mark.parametrize("middleware", [BodyLimitMiddleware, RequestIdMiddleware])
async def test_non_http_scopes_pass_through(middleware):
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    kwargs = {"max_body": 1} if middleware is BodyLimitMiddleware else {}
    await middleware(app, **kwargs)({"type": "lifespan"}, None, None)
    assert seen == ["lifespan"]


async def test_request_id_and_unhandled_errors_together():
    app = tiny((RequestIdMiddleware, {}), (UnhandledErrorMiddleware, {}))
    async with client_for(app) as client:
        response = await client.get("/boom", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "abc-123"
    body = response.json()
    assert body["error"]["code"] == "INTERNAL_ERROR" and "abc-123" in body["error"]["message"]
    assert "internal detail" not in response.text
