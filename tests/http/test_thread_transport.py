"""ThreadTransport and AutoTransport beyond what every transport does (test_transports.py):
workers started as needed, cancellation that does not wait for a blocked socket, TLS
built only for `https://` and verified, and the move from threads to aiohttp. A real
aiohttp.web server on 127.0.0.1 (plain and TLS), no mocks."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from interlink.errors import TransportError
from interlink.http import (
    ApiClient,
    AutoTransport,
    RetryPolicy,
    ThreadTransport,
    _auto_transport as auto_module,
)


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"body": (await request.read()).decode(), "path": request.path})


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "3")))
    return web.json_response({"late": True})


async def _serve(ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/slow", _slow)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def server() -> AsyncIterator[str]:
    runner, port = await _serve()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "interlink test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner, port = await _serve(context)
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        await runner.cleanup()


async def test_sequential_requests_use_one_worker_thread(server):
    transport = ThreadTransport()
    async with ApiClient(server, transport=transport) as api:
        for _ in range(20):
            assert (await api.get_json("/echo"))["path"] == "/echo"
        assert transport.workers == 1
        await asyncio.gather(*(api.get_json("/echo") for _ in range(6)))
        assert 1 < transport.workers <= 6
    assert transport.workers == 0
    for _ in range(50):  # each idle worker takes its stop and ends
        if not any(t.name.startswith("interlink-http") for t in threading.enumerate()):
            break
        await asyncio.sleep(0.01)
    assert not any(t.name.startswith("interlink-http") for t in threading.enumerate())


async def test_a_body_given_as_an_async_stream_is_sent(server):
    async def chunks() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    transport = ThreadTransport()
    request = httpx.Request("POST", f"{server}/echo", content=chunks())
    try:
        response = await transport.handle_async_request(request)
    finally:
        await transport.aclose()
    assert response.status_code == 200
    assert response.json()["body"] == "hello world"


async def test_a_cancelled_request_does_not_wait_for_its_socket(server):
    transport = ThreadTransport()
    api = ApiClient(server, transport=transport, retry=RetryPolicy(max_attempts=1))
    task = asyncio.create_task(api.get("/slow?s=3"))
    await asyncio.sleep(0.3)  # the worker is now blocked reading the slow answer
    assert transport.workers == 1
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await api.aclose()
    assert time.monotonic() - started < 0.5, "cancel and close do not wait for the read"


async def test_a_closed_transport_refuses_to_send(server):
    transport = ThreadTransport()
    await transport.aclose()
    with pytest.raises(httpx.TransportError, match="closed"):
        await transport.handle_async_request(httpx.Request("GET", f"{server}/echo"))


async def test_plain_http_builds_no_tls_context(server, monkeypatch):
    built: list[object] = []
    real = ssl.create_default_context
    monkeypatch.setattr(
        ssl, "create_default_context", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    transport = ThreadTransport()
    async with ApiClient(server, transport=transport) as api:
        await api.get_json("/echo")
    assert built == [], "the CA bundle loads only for the first https:// request"


async def test_https_is_verified_against_the_system_store(tls_server, monkeypatch):
    url, cert = tls_server
    # Not trusted: the certificate signs itself and the CA bundle does not hold it.
    async with ApiClient(
        url, transport=ThreadTransport(), retry=RetryPolicy(max_attempts=1)
    ) as api:
        with pytest.raises(TransportError, match="its TLS certificate was refused"):
            await api.get("/echo")
    # Trusted the way the system store is extended: SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with ApiClient(url, transport=ThreadTransport()) as api:
        assert (await api.get_json("/echo"))["path"] == "/echo"


async def test_auto_stays_on_threads_for_sequential_requests(server):
    transport = AutoTransport()
    async with ApiClient(server, transport=transport) as api:
        for _ in range(30):
            await api.get_json("/echo")
        assert transport.using == "threads"


async def test_auto_moves_to_aiohttp_when_many_requests_are_in_flight(server):
    transport = AutoTransport()
    async with ApiClient(server, transport=transport) as api:
        await api.get_json("/echo")
        assert transport.using == "threads"
        bodies = await asyncio.gather(*(api.get_json("/echo") for _ in range(40)))
        assert transport.using == "aiohttp"
        assert all(body["path"] == "/echo" for body in bodies), "every answer arrived"
        assert (await api.get_json("/echo"))["path"] == "/echo"


async def test_auto_moves_to_aiohttp_after_many_requests(server, monkeypatch):
    monkeypatch.setattr(auto_module, "THREADS_FOR", 5)
    transport = AutoTransport()
    async with ApiClient(server, transport=transport) as api:
        for n in range(5):
            await api.get_json("/echo")
            assert transport.using == "threads", n
        await api.get_json("/echo")
        assert transport.using == "aiohttp"


async def test_auto_up_to_four_in_flight_stay_on_threads(server):
    transport = AutoTransport()
    async with ApiClient(server, transport=transport) as api:
        for _ in range(5):
            await asyncio.gather(*(api.get_json("/echo") for _ in range(4)))
        assert transport.using == "threads"


def _connections_to(port: int) -> int:
    """Sockets of this process connected to `port`, whatever holds them."""
    import psutil

    return sum(
        1
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


async def test_a_request_out_when_the_transport_closes_leaves_no_connection(server):
    port = int(server.rsplit(":", 1)[1])
    transport = ThreadTransport()
    api = ApiClient(server, transport=transport, retry=RetryPolicy(max_attempts=1))
    task = asyncio.create_task(api.get("/slow?s=0.5"))
    await asyncio.sleep(0.2)
    assert _connections_to(port) == 1, "the request is out"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await api.aclose()
    # The worker reads the answer after the close, and its connection goes back to the
    # closed pool: it must be closed there, not left open until garbage collection.
    for _ in range(100):
        if _connections_to(port) == 0 and transport.workers == 0:
            break
        await asyncio.sleep(0.02)
    assert _connections_to(port) == 0


async def test_httpcore_never_logs_raw_headers(server, caplog):
    """httpcore's DEBUG trace prints raw answer headers (a `Link` carrying a query API
    key): with everything at DEBUG, it stays silent; interlink's own lines are masked."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpcore").setLevel(logging.NOTSET)
    async with ApiClient(f"{server}", transport=ThreadTransport()) as api:
        await api.get_json("/echo", params={"api_key": "sk_live_never_logged"})
    assert not [r for r in caplog.records if r.name.startswith("httpcore")]
    assert "sk_live_never_logged" not in caplog.text
