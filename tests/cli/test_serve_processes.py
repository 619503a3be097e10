"""`interlink serve --processes N`: N supervised server processes on one port
(cli/_processes.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from interlink.cli._processes import FAST_FAILURE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork and PR_SET_PDEATHSIG")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}/api/v1/health"

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def wait_for_children(self, count: int, timeout: float = 30.0) -> list[psutil.Process]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = self.children()
            if len(children) == count and self.answers():
                return children
            time.sleep(0.1)
        raise AssertionError(f"expected {count} server processes; {self.children()}")

    def answers(self) -> bool:
        try:
            return httpx.get(self.url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _serve_two(folder: Path, port: int, output: int) -> subprocess.Popen[str]:
    """`interlink serve --no-worker --processes 2` on `port`, with the config in `folder`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from interlink.cli.main import main; main()",
            "serve",
            "--no-worker",
            "--processes",
            "2",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=folder,
        stdout=output,
        stderr=output,
        text=True,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "interlink.yaml").write_text(f"database: sqlite:///{tmp_path / 'p.db'}\n")
    port = _free_port()
    process = _serve_two(tmp_path, port, subprocess.PIPE)
    try:
        yield Served(process, port)
    finally:
        for child in (
            psutil.Process(process.pid).children(recursive=True) if (process.poll() is None) else []
        ):
            child.kill()
        if process.poll() is None:
            process.kill()
        process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_two_processes_serve_one_port_and_stop_together(served: Served) -> None:
    children = served.wait_for_children(2)
    for _ in range(20):  # new connections: the kernel hands them to either process
        with httpx.Client() as client:
            assert client.get(served.url).status_code == 200
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(20) == 0
    for child in children:
        assert not psutil.pid_exists(child.pid) or child.status() == psutil.STATUS_ZOMBIE
    out = served.process.stdout.read() if served.process.stdout else ""
    assert "processes: 2, sharing the port" in out


def test_a_killed_process_is_started_again(served: Served) -> None:
    first, second = served.wait_for_children(2)
    os.kill(second.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = {c.pid for c in served.children()}
        if len(pids) == 2 and second.pid not in pids:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"not restarted: {served.children()}")
    assert first.pid in pids and served.answers()
    served.process.send_signal(signal.SIGINT)  # Ctrl-C, as a terminal sends it
    assert served.process.wait(20) == 0
    err = served.process.stderr.read() if served.process.stderr else ""
    assert "was killed by SIGKILL; starting it again" in err


def test_the_children_stop_when_the_parent_is_killed(served: Served) -> None:
    children = served.wait_for_children(2)
    served.process.kill()
    served.process.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"orphans kept serving: {alive}")


def test_a_process_that_fails_at_start_three_times_stops_them_all(tmp_path: Path) -> None:
    script = tmp_path / "supervise.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from interlink.cli._processes import Supervisor

            def serve(index):
                if index == 1:
                    raise RuntimeError("no port for me")
                time.sleep(60)

            code = Supervisor(2, serve, report=lambda line: print(line, file=sys.stderr),
                              poll=0.02).run()
            sys.exit(code)
            """
        )
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "server process 1: RuntimeError: no port for me" in done.stderr
    assert f"exited with code 1 3 times within {FAST_FAILURE:g} s of starting" in done.stderr
    assert time.monotonic() - started < 30  # the healthy one was stopped, not waited for


def test_webhooks_through_two_processes_are_all_stored_once(tmp_path: Path) -> None:
    """Both processes commit webhook batches into one SQLite file, taking turns through
    the writer lock: every delivery answered 202 is stored, once."""
    import asyncio
    import sqlite3

    from interlink.config import InterlinkConfig
    from interlink.webhooks import sign

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    (tmp_path / "interlink.yaml").write_text(
        f"database: sqlite:///{tmp_path / 'p.db'}\n"
        f"webhooks:\n  shop:\n    scheme: standard\n    secret: {secret}\n"
    )
    source = InterlinkConfig.model_validate(
        {"webhooks": {"shop": {"scheme": "standard", "secret": secret}}}
    ).webhooks["shop"]
    port = _free_port()
    process = _serve_two(tmp_path, port, subprocess.DEVNULL)
    served = Served(process, port)
    try:
        served.wait_for_children(2)
        url = f"http://127.0.0.1:{port}/api/v1/webhooks/shop"

        async def send_all() -> list[int]:
            async def one(client: httpx.AsyncClient, n: int) -> int:
                body = f'{{"id": "evt_{n}"}}'.encode()
                headers = sign(source, body, timestamp=int(time.time()), delivery_id=f"d{n}")
                return (await client.post(url, content=body, headers=headers)).status_code

            statuses: list[int] = []
            for start in range(0, 300, 30):  # 30 connections at a time
                async with httpx.AsyncClient(limits=httpx.Limits(max_connections=30)) as c:
                    statuses += await asyncio.gather(*(one(c, n) for n in range(start, start + 30)))
            return statuses

        statuses = asyncio.run(send_all())
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert statuses == [202] * 300
    with sqlite3.connect(tmp_path / "p.db") as db:
        stored = db.execute(
            "SELECT count(*), count(DISTINCT delivery_id) FROM interlink_webhook_deliveries"
        ).fetchone()
    assert stored == (300, 300)
