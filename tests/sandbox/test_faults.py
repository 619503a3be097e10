import asyncio
import logging
import socket
import time

import httpx
import pytest

from interlink.sandbox import DroppedConnectionError, FaultConfig

from .conftest import ServeShop, ShopClient


def test_server_error_fault(serve_shop: ServeShop) -> None:
    server = serve_shop(faults=FaultConfig(server_error_rate=1.0))
    response = httpx.get(f"{server.url}/customers")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_unavailable_fault_has_retry_after(serve_shop: ServeShop) -> None:
    server = serve_shop(faults=FaultConfig(unavailable_rate=1.0))
    response = httpx.get(f"{server.url}/customers")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_slow_fault_delays_the_answer(serve_shop: ServeShop) -> None:
    server = serve_shop(faults=FaultConfig(slow_rate=1.0, slow_seconds=0.3))
    with httpx.Client(base_url=server.url) as client:
        started = time.perf_counter()
        assert client.get("/customers/1").status_code == 200
        assert time.perf_counter() - started >= 0.3
        with pytest.raises(httpx.ReadTimeout):
            client.get("/customers/1", timeout=0.05)
    stats = httpx.get(f"{server.url}/_stats").json()
    assert stats["faults"]["slow"] == 2


def test_dropped_connection_is_a_transport_error(
    serve_shop: ServeShop, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve_shop(faults=FaultConfig(drop_rate=1.0))
    with httpx.Client(base_url=server.url) as client:
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                client.get("/customers")
        stats = client.get("/_stats").json()
    assert stats["faults"]["drop"] == 2 and stats["faults_injected"] == 2
    # Injected drops are not reported as application errors.
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_dropped_connection_sends_no_bytes(serve_shop: ServeShop) -> None:
    server = serve_shop(faults=FaultConfig(drop_rate=1.0))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /customers HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        assert sock.recv(1024) == b""


def test_lost_response_processes_the_request_then_drops(serve_shop: ServeShop) -> None:
    server = serve_shop(records=10, faults=FaultConfig(lost_response_rate=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{server.url}/customers", json={"email": "lost@example.com"})
    stats = httpx.get(f"{server.url}/_stats").json()
    assert stats["creates"] == 1 and stats["faults"]["lost_response"] == 1


async def test_in_process_drops_raise(shop_client: ShopClient) -> None:
    client = shop_client(faults=FaultConfig(drop_rate=1.0))
    with pytest.raises(DroppedConnectionError):
        await client.get("/customers")


async def test_faults_are_reproducible_for_a_seed(shop_client: ShopClient) -> None:
    config = FaultConfig(server_error_rate=0.2, unavailable_rate=0.1, seed=3)

    async def statuses(client: httpx.AsyncClient) -> list[int]:
        return [(await client.get("/customers/1")).status_code for _ in range(200)]

    first = await statuses(shop_client(faults=config))
    assert first == await statuses(shop_client(faults=config))
    assert first != await statuses(shop_client(faults=FaultConfig(server_error_rate=0.2, seed=4)))
    assert 20 <= first.count(500) <= 60
    assert 5 <= first.count(503) <= 35
    assert first.count(200) + first.count(500) + first.count(503) == 200


async def test_reset_restarts_the_fault_sequence(shop_client: ShopClient) -> None:
    client = shop_client(faults=FaultConfig(server_error_rate=0.5, seed=11))
    before = [(await client.get("/echo")).status_code for _ in range(30)]
    await client.post("/_reset")
    assert [(await client.get("/echo")).status_code for _ in range(30)] == before


async def test_admin_paths_never_fail(shop_client: ShopClient) -> None:
    client = shop_client(faults=FaultConfig(unavailable_rate=1.0))
    assert (await client.get("/customers")).status_code == 503
    for _ in range(5):
        assert (await client.get("/_stats")).status_code == 200
    assert (await client.post("/_reset")).status_code == 200
    stats = (await client.get("/_stats")).json()
    assert stats["faults"] == dict.fromkeys(
        ["server_error", "unavailable", "rate_limited", "slow", "drop", "lost_response"], 0
    )


def test_fault_config_is_validated() -> None:
    with pytest.raises(ValueError):
        FaultConfig(drop_rate=1.5)
    with pytest.raises(ValueError):
        FaultConfig(server_error_rate=0.6, unavailable_rate=0.6)
    with pytest.raises(ValueError):
        FaultConfig(slow_seconds=-1)
    FaultConfig(server_error_rate=0.5, unavailable_rate=0.5, slow_rate=1.0)


async def test_a_rate_limited_fault_closes_the_clients_window(shop_client: ShopClient) -> None:
    """A 429 fault refuses that client's later requests until its Retry-After has passed,
    and counts those sent after the grace as violations; other clients go on."""
    faults = FaultConfig(rate_limited_rate=1.0, rate_limited_retry_after=1, window_key="X-Client")
    client = shop_client(faults=faults)
    first = await client.get("/echo", headers={"X-Client": "a"})
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    await asyncio.sleep(0.1)
    again = await client.get("/echo", headers={"X-Client": "a"})
    assert again.status_code == 429
    other = await client.get("/echo", headers={"X-Client": "b"})
    assert other.status_code == 429  # its own fault (rate 1.0), not a violation
    stats = (await client.get("/_stats")).json()
    assert stats["windows_closed"] == 2 and stats["window_violations"] == 1
