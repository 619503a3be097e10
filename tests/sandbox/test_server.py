import socket
import threading
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from interlink.sandbox import SandboxServer, create_shop_app, run_sandbox


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_sync_context_manager_serves_and_stops() -> None:
    server = SandboxServer(create_shop_app(records=3))
    with server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        assert httpx.get(f"{server.url}/customers").json()["total"] == 3
    assert not _accepts_connections(server.port)
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("sandbox-")]


async def test_async_context_manager_serves_and_stops() -> None:
    async with SandboxServer(create_shop_app(records=3)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/customers/3")).json()["id"] == 3
    assert not _accepts_connections(server.port)


def test_stop_with_an_idle_keep_alive_connection_open() -> None:
    with SandboxServer(create_shop_app()) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/echo").status_code == 200
        server.stop()
        with pytest.raises(httpx.TransportError):
            client.get("/echo")


def test_fixed_port_and_port_in_use() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SandboxServer(create_shop_app(), port=port) as server:
        assert server.url == f"http://127.0.0.1:{port}"
        with pytest.raises(OSError):
            SandboxServer(create_shop_app(), port=port).start()


def test_misuse() -> None:
    server = SandboxServer(create_shop_app())
    with pytest.raises(RuntimeError):
        server.url  # noqa: B018
    server.stop()  # stopping a server that never started is harmless
    with server:
        with pytest.raises(RuntimeError):
            server.start()
    server.stop()


def test_a_failing_startup_is_reported() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "boom"})

    with pytest.raises(RuntimeError, match="failed to start"):
        SandboxServer(app).start()


def test_run_sandbox_serves_the_shop_in_the_foreground(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(self.config))
    run_sandbox(8765, records=5, seed=1, token="t", rate_limit=(5, 1, 5))
    (config,) = seen
    assert (config.host, config.port, config.log_level, config.access_log) == (
        "127.0.0.1",
        8765,
        "warning",
        False,
    )
    assert isinstance(config.app, Starlette)
    assert config.app.state.customers.total == 5


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    server = SandboxServer(create_shop_app(), host="::1")
    try:
        server.start()
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        assert server.url == f"http://[::1]:{server.port}"
        assert httpx.get(f"{server.url}/echo").status_code == 200
    finally:
        server.stop()


def test_listening_socket_is_tcp_so_responses_are_not_delayed_by_nagle() -> None:
    """Regression: a socket made with proto 0 kept asyncio from setting TCP_NODELAY on
    accepted connections, and every small response waited ~40 ms for a delayed ACK."""
    import socket

    from interlink.sandbox import SandboxServer, create_shop_app

    with SandboxServer(create_shop_app(records=1)) as server:
        assert server._server is not None
        listening = server._server.servers[0].sockets[0]
        assert listening.proto == socket.IPPROTO_TCP
