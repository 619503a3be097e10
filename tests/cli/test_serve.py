"""`interlink serve`: the API plus the embedded worker, in one command."""

from __future__ import annotations

import socket

import httpx
import pytest
from typer.testing import CliRunner

from interlink.cli import _serve
from interlink.cli.main import app
from interlink.store import Store, create_api_key
from tests.cli.jobs_project import write_config
from tests.server.serving import PARSERS, serve_process


@pytest.fixture
def captured(monkeypatch):
    seen = {}

    def fake_run(application, sock, log_level, protocol):
        seen.update(
            app=application, port=sock.getsockname()[1], log_level=log_level, protocol=protocol
        )

    monkeypatch.setattr(_serve, "_run_server", fake_run)
    return seen


def test_serve_prints_the_url_and_starts_the_worker_by_default(tmp_path, captured):
    config = write_config(tmp_path)
    result = CliRunner().invoke(app, ["serve", "-c", str(config), "--port", "0"])
    assert result.exit_code == 0, result.output
    url = f"http://127.0.0.1:{captured['port']}/api/v1"
    assert f"interlink API on {url}" in result.stdout
    assert "worker: on, 4 jobs at once" in result.stdout
    context = captured["app"].state.interlink
    assert context.worker is True and context.concurrency == 4


def test_serve_no_worker_and_concurrency(tmp_path, captured):
    config = write_config(tmp_path)
    result = CliRunner().invoke(
        app, ["serve", "-c", str(config), "--port", "0", "--no-worker", "--log-level", "warning"]
    )
    assert result.exit_code == 0, result.output
    assert "worker: off (--no-worker)" in result.stdout
    assert captured["app"].state.interlink.worker is False
    assert captured["log_level"] == "warning"
    result = CliRunner().invoke(
        app, ["serve", "-c", str(config), "--port", "0", "--concurrency", "9"]
    )
    assert "worker: on, 9 jobs at once" in result.stdout
    assert captured["app"].state.interlink.concurrency == 9


def test_serve_reports_a_busy_port_and_a_bad_config(tmp_path, captured):
    config = write_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "-c", str(config), "--port", str(port)])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("server:\n  max_body: lots\n")
    result = CliRunner().invoke(app, ["serve", "-c", str(broken), "--port", "0"])
    assert result.exit_code == 2 and "max_body" in result.stderr
    assert captured == {}


def test_serve_runs_on_httptools_when_installed_and_h11_on_request(tmp_path, captured):
    from interlink.server import EnvelopeH11Protocol, EnvelopeHttpToolsProtocol

    config = write_config(tmp_path)
    for args, protocol, shown in [
        ([], EnvelopeHttpToolsProtocol, "http: httptools\n"),
        (["--http", "auto"], EnvelopeHttpToolsProtocol, "http: httptools\n"),
        (["--http", "httptools"], EnvelopeHttpToolsProtocol, "http: httptools\n"),
        (["--http", "h11"], EnvelopeH11Protocol, "http: h11\n"),
    ]:
        result = CliRunner().invoke(app, ["serve", "-c", str(config), "--port", "0", *args])
        assert result.exit_code == 0, result.output
        assert captured["protocol"] is protocol, args
        assert shown in result.stdout
    result = CliRunner().invoke(app, ["serve", "-c", str(config), "--http", "picohttp"])
    assert result.exit_code == 2 and "picohttp" in result.output


def test_serve_without_httptools_falls_back_to_h11_or_says_what_is_missing(
    tmp_path, captured, monkeypatch
):
    import importlib.util

    from interlink.server import EnvelopeH11Protocol

    find_spec = importlib.util.find_spec

    def without_httptools(name, *args):
        return None if name == "httptools" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_httptools)
    config = write_config(tmp_path)
    result = CliRunner().invoke(app, ["serve", "-c", str(config), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert captured["protocol"] is EnvelopeH11Protocol
    assert "http: h11 (httptools is not installed)" in result.stdout
    captured.clear()
    result = CliRunner().invoke(
        app, ["serve", "-c", str(config), "--port", "0", "--http", "httptools"]
    )
    assert result.exit_code == 2
    assert "--http httptools: the httptools package is not installed" in result.stderr
    assert captured == {}


@pytest.mark.parametrize("parser", PARSERS)
def test_interlink_serve_as_a_process_answers_and_runs_jobs(tmp_path, parser):
    config = write_config(tmp_path)
    store = Store.open(f"sqlite:///{tmp_path / 'interlink.db'}")
    key = create_api_key(store.engine, "test", "write").secret
    store.close()
    with serve_process(config, "--concurrency", "2", "--http", parser) as (url, banner):
        assert "worker: on, 2 jobs at once" in banner
        assert f"http: {parser}\n" in banner
        health = httpx.get(f"{url}/health").json()["data"]
        assert health["status"] == "ok" and health["worker"] == "running"
        headers = {"Authorization": f"Bearer {key}"}
        job = httpx.post(f"{url}/jobs", json={"kind": "noop"}, headers=headers).json()["data"]
        for _ in range(200):  # at most ~10 s
            shown = httpx.get(f"{url}/jobs/{job['job_id']}", headers=headers).json()["data"]
            if shown["status"] == "completed":
                break
            import time

            time.sleep(0.05)
        assert shown["status"] == "completed"


def test_connections_to_the_listening_socket_send_without_delay() -> None:
    """asyncio sets TCP_NODELAY on the connections of a socket made as TCP; without it an
    answer's body waits for the client's delayed ACK of its headers (40 ms on Linux)."""
    import asyncio

    sock = _serve._listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def go() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted = writer.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()

    try:
        asyncio.run(asyncio.wait_for(go(), 10))
    finally:
        sock.close()
    assert seen == [1]
