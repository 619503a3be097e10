"""The transports (aiohttp, threads, and auto: threads then aiohttp) against a real local
server: bytes on a socket, not mocks. Every behaviour holds for each of them."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from aiohttp import web

from interlink.errors import TransportError
from interlink.http import (
    AiohttpTransport,
    ApiClient,
    AutoTransport,
    RetryPolicy,
    ThreadTransport,
    create_transport,
)

TRANSPORTS = {"aiohttp": AiohttpTransport, "threads": ThreadTransport, "auto": AutoTransport}


@pytest.fixture(params=sorted(TRANSPORTS))
def make(request):
    """Builds the transport under test (each test runs for every one)."""
    return TRANSPORTS[request.param]


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body": body.decode(),
        }
    )


async def _gzip(request: web.Request) -> web.Response:
    data = orjson.dumps({"data": list(range(1000))})
    return web.Response(
        body=gzip.compress(data),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.Response(text="late")


async def _drop(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.abort()
    await asyncio.sleep(0.1)
    return web.Response(text="never sent")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("http://169.254.169.254/latest/meta-data")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/gzip", _gzip)
    app.router.add_get("/slow", _slow)
    app.router.add_route("*", "/drop", _drop)
    app.router.add_get("/redirect", _redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_get_and_post_round_trip(server, make):
    async with ApiClient(server, transport=make()) as api:
        got = await api.get_json("/echo", params={"q": "x y"})
        posted = (await api.post("/echo", json={"a": 1})).json()
    assert got["method"] == "GET" and got["path"] == "/echo?q=x+y"
    assert got["headers"]["User-Agent"].startswith("interlink/")
    assert posted["method"] == "POST" and orjson.loads(posted["body"]) == {"a": 1}
    assert posted["headers"]["Content-Type"] == "application/json"


async def test_gzip_bodies_are_decoded_once(server, make):
    async with ApiClient(server, transport=make()) as api:
        body = await api.get_json("/gzip")
    assert body["data"][-1] == 999


async def test_redirects_are_not_followed(server, make):
    async with ApiClient(server, transport=make()) as api:
        response = await api.get("/redirect", raise_for_status=False)
    assert response.status_code == 302


async def test_read_timeout_becomes_transport_error(server, make):
    async with ApiClient(
        server,
        transport=make(),
        timeout=httpx.Timeout(5.0, read=0.2),
        retry=RetryPolicy(max_attempts=2, jitter=lambda c: 0),
    ) as api:
        with pytest.raises(TransportError, match="ReadTimeout") as caught:
            await api.get("/slow")
    assert caught.value.attempts == 2


async def test_connection_refused_becomes_transport_error(make):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now.
    async with ApiClient(
        f"http://127.0.0.1:{port}",
        transport=make(),
        retry=RetryPolicy(max_attempts=3, jitter=lambda c: 0),
    ) as api:
        with pytest.raises(TransportError, match="ConnectError") as caught:
            await api.get("/x")
    assert caught.value.attempts == 3


async def test_dropped_connection_is_a_transport_error_and_retried_for_get(server, make):
    async with ApiClient(
        server,
        transport=make(),
        retry=RetryPolicy(max_attempts=2, jitter=lambda c: 0),
    ) as api:
        with pytest.raises(TransportError) as caught:
            await api.get("/drop")
        with pytest.raises(TransportError) as post:
            await api.post("/drop", json={})
    assert caught.value.attempts == 2
    assert post.value.attempts == 1, "a POST that may have arrived is not sent again"


async def test_concurrent_requests_share_the_pool(server, make):
    async with ApiClient(server, transport=make(max_connections=4)) as api:
        results = await asyncio.gather(*(api.get_json("/echo") for _ in range(50)))
    assert len(results) == 50


@pytest.mark.parametrize("name", ["auto", "aiohttp", "threads", "httpx"])
async def test_every_named_transport_behaves_alike(server, name):
    async with ApiClient(server, transport=create_transport(name)) as api:
        body = await api.get_json("/gzip")
        echo = await api.get_json("/echo")
    assert body["data"][0] == 0
    assert echo["method"] == "GET"


def test_unknown_transport_name():
    with pytest.raises(ValueError, match="unknown transport"):
        create_transport("curl")  # type: ignore[arg-type]
