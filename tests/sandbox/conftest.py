from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from interlink.sandbox import SandboxServer, create_shop_app

ServeShop = Callable[..., SandboxServer]
ShopClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
def serve_shop() -> Iterator[ServeShop]:
    """Start a real shop server with `create_shop_app(**options)`; stopped after the test."""
    servers: list[SandboxServer] = []

    def serve(**options: Any) -> SandboxServer:
        server = SandboxServer(create_shop_app(**options))
        server.start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture
async def shop_client() -> AsyncIterator[ShopClient]:
    """An in-process httpx client for `create_shop_app(**options)`, for tests without sockets."""
    clients: list[httpx.AsyncClient] = []

    def make(**options: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=create_shop_app(**options))
        client = httpx.AsyncClient(transport=transport, base_url="http://shop.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


AppClient = Callable[[Any], httpx.AsyncClient]


@pytest.fixture
async def app_client() -> AsyncIterator[AppClient]:
    """An in-process httpx client for any ASGI app, at `http://sandbox.test`."""
    clients: list[httpx.AsyncClient] = []

    def make(app: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://sandbox.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
