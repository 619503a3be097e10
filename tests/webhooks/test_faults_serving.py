"""The webhook inbox under faults, through real `interlink serve --processes 2` processes.

The promise (issue 12): a delivery answered 2xx is stored exactly once with exactly one
job, whatever happens after the answer; a delivery not stored is answered 5xx. Each test
sends signed deliveries from concurrent senders while a fault happens (a server process
killed with SIGKILL, the supervisor stopped with SIGTERM mid-load, the SQLite file locked
by another program for longer than busy_timeout, PostgreSQL backends terminated), asserts
that the fault fired, then holds every 2xx answer to the database's rows and jobs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.webhooks import sign
from tests.server.serving import _Lines
from tests.webhooks.conftest import STANDARD_SECRET

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork and PR_SET_PDEATHSIG")

_SOURCE = InterlinkConfig.model_validate(
    {"webhooks": {"shop": {"scheme": "standard", "secret": STANDARD_SECRET}}}
).webhooks["shop"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """`interlink serve --no-worker --processes N`, its output kept."""

    process: subprocess.Popen[str]
    port: int
    out: _Lines
    err: _Lines

    @property
    def hook(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/webhooks/shop"

    def children(self) -> list[psutil.Process]:
        found: list[psutil.Process] = psutil.Process(self.process.pid).children()
        return found


@dataclass
class Results:
    """Every answer: (delivery id, status, row id answered or None)."""

    answers: list[tuple[str, int, int | None]] = field(default_factory=list)
    errors: int = 0

    def statuses(self) -> Counter[int]:
        return Counter(status for _, status, _ in self.answers)


def _serve(folder: Path, database: str, processes: int = 2) -> Server:
    (folder / "interlink.yaml").write_text(
        f"database: {database}\n"
        f"webhooks:\n  shop:\n    scheme: standard\n    secret: {STANDARD_SECRET}\n"
    )
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from interlink.cli.main import main; main()",
            "serve",
            "--no-worker",
            "--processes",
            str(processes),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None and process.stderr is not None
    server = Server(process, port, _Lines(process.stdout), _Lines(process.stderr))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(server.children()) == processes and _healthy(port):
            return server
        if process.poll() is not None:
            break
        time.sleep(0.1)
    _stop(server)
    raise AssertionError(f"interlink serve did not start: {server.err.text()[-2000:]}")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(server: Server) -> int:
    """SIGTERM the supervisor; its exit code. Kills whatever is left (and fails then)."""
    left: list[psutil.Process] = []
    if server.process.poll() is None:
        children = server.children()
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(60)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)
        left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        for child in left:
            child.kill()
    server.out.join()
    server.err.join()
    for stream in (server.process.stdout, server.process.stderr):
        if stream is not None:
            stream.close()
    assert not left, f"server processes outlived the supervisor: {left}"
    return server.process.returncode


def _request(n: int | str) -> tuple[str, bytes, dict[str, str]]:
    delivery = f"msg_{n}"
    body = orjson.dumps({"id": f"evt_{n}", "type": "thing.changed", "data": {"n": str(n)}})
    headers = sign(_SOURCE, body, timestamp=int(time.time()), delivery_id=delivery)
    headers["content-type"] = "application/json"
    return delivery, body, headers


def _send(
    url: str, stop: threading.Event, results: Results, *, senders: int = 16, prefix: str = ""
) -> None:
    """Send distinct deliveries (and every tenth a resend) from `senders` loops until
    `stop` is set; a new connection per request, so the kernel spreads them."""

    async def sender(index: int) -> None:
        count = 0
        async with httpx.AsyncClient(timeout=60) as client:
            while not stop.is_set():
                count += 1
                n = f"{prefix}{index}_{count - 1 if count % 10 == 0 else count}"
                delivery, body, headers = _request(n)
                try:
                    answer = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    results.errors += 1
                    await asyncio.sleep(0.01)
                    continue
                row: int | None = None
                if answer.status_code < 300:
                    row = int(answer.json()["data"]["id"])
                results.answers.append((delivery, answer.status_code, row))

    async def main() -> None:
        await asyncio.gather(*(sender(i) for i in range(senders)))

    asyncio.run(main())


@contextmanager
def _load(url: str, *, senders: int = 16, prefix: str = "") -> Iterator[Results]:
    """Deliveries sent to `url` in the background for as long as the block lasts."""
    results = Results()
    stop = threading.Event()
    thread = threading.Thread(
        target=_send, args=(url, stop, results), kwargs={"senders": senders, "prefix": prefix}
    )
    thread.start()
    try:
        yield results
    finally:
        stop.set()
        thread.join(90)


def _wait_answers(results: Results, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(results.answers) < count:
        assert time.monotonic() < deadline, f"only {len(results.answers)} answers"
        time.sleep(0.02)


def _check(database: str, results: Results) -> dict[str, tuple[int, int]]:
    """Every 2xx delivery stored once, under the row id answered, with one job that names
    it; no job names a delivery twice. The stored rows: delivery id -> (row, job)."""
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, delivery_id, job_id FROM interlink_webhook_deliveries"
                    " WHERE source = 'shop'"
                )
            ).all()
            jobs = conn.execute(
                sa.text("SELECT id, args FROM interlink_jobs WHERE kind = 'webhook.process'")
            ).all()
    finally:
        engine.dispose()
    stored: dict[str, tuple[int, int]] = {}
    for row_id, delivery, job in rows:
        assert delivery not in stored, f"{delivery} stored twice"
        stored[delivery] = (int(row_id), job)
    named: Counter[int] = Counter()
    job_of: dict[int, int] = {}
    for job_id, args in jobs:
        parsed = orjson.loads(args) if isinstance(args, (str, bytes)) else args
        for row_id in parsed.get("deliveries", [parsed.get("delivery")]):
            named[row_id] += 1
            job_of[row_id] = int(job_id)
    assert not [r for r, n in named.items() if n > 1], "a delivery in two jobs"
    for delivery, status, row_id in results.answers:
        if status >= 300:
            continue
        assert delivery in stored, f"{delivery} answered {status} and not stored"
        assert stored[delivery][0] == row_id, f"{delivery} answered as {row_id}"
        assert job_of.get(row_id) == stored[delivery][1] is not None, f"{delivery}: no job"
    for delivery, (row_id, job) in stored.items():
        assert job is not None and job_of.get(row_id) == job, f"{delivery} has no job"
    return stored


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hooks.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield _sqlite(tmp_path)
        return
    from tests.jobs.procrastinate_schema import fresh_schema

    with fresh_schema(request.getfixturevalue("postgres_url"), "test_hook_faults") as url:
        yield url


def test_a_server_process_killed_mid_load_loses_no_answered_delivery(
    tmp_path: Path, database: str
) -> None:
    server = _serve(tmp_path, database)
    try:
        with _load(server.hook) as results:
            _wait_answers(results, 200)
            victim = server.children()[1]
            os.kill(victim.pid, signal.SIGKILL)
            before = len(results.answers)
            _wait_answers(results, before + 300)
        code = _stop(server)
    finally:
        if server.process.poll() is None:
            _stop(server)
    assert "was killed by SIGKILL; starting it again" in server.err.text()
    assert code == 0
    statuses = results.statuses()
    assert statuses[202] > 400 and statuses[200] > 0, statuses
    assert set(statuses) <= {200, 202, 503}, statuses
    _check(database, results)


def test_sigterm_mid_load_answers_or_refuses_every_delivery(tmp_path: Path, database: str) -> None:
    server = _serve(tmp_path, database)
    with _load(server.hook) as results:
        _wait_answers(results, 300)
        code = _stop(server)
        time.sleep(0.3)  # senders meet the closed port
    assert code == 0
    assert results.errors > 0  # the stop happened under load
    _check(database, results)


def test_a_database_locked_past_busy_timeout_answers_503_then_recovers(tmp_path: Path) -> None:
    database = _sqlite(tmp_path)
    server = _serve(tmp_path, database)
    try:
        with _load(server.hook, senders=8) as results:
            _wait_answers(results, 100)
            other = sqlite3.connect(tmp_path / "hooks.db", isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")
            locked_at = len(results.answers)
            time.sleep(11.0)  # busy_timeout is 10 s
            other.execute("ROLLBACK")
            other.close()
            refused = results.statuses()[503]
            _wait_answers(results, len(results.answers) + 200)
        code = _stop(server)
    finally:
        if server.process.poll() is None:
            _stop(server)
    assert locked_at > 0 and refused > 0, results.statuses()  # the lock was felt
    assert code == 0
    _check(database, results)


def _writers_when(
    server: Server, ready: Callable[[list[psutil.Process]], bool], timeout: float = 10.0
) -> list[psutil.Process]:
    """The server processes' writer processes, once `ready` holds of them (or at the end
    of `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [w for c in server.children() for w in c.children()]
        if ready(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_an_inbox_writer_process_killed_mid_load_loses_no_answered_delivery(
    tmp_path: Path,
) -> None:
    """On SQLite each server process stores through a writer process of its own
    (webhooks/_inbox_process.py). SIGKILL one under load: what waited on it is answered
    503 (and sent again by its sender), a new writer takes over, and every delivery
    answered 2xx is stored once with its job."""
    database = _sqlite(tmp_path)
    server = _serve(tmp_path, database)
    try:
        with _load(server.hook) as results:
            _wait_answers(results, 300)
            # One per server process, started by its first delivery (the senders'
            # keep-alive connections may all have gone to one of the two).
            writers = _writers_when(server, lambda found: len(found) >= 1)
            assert writers, "no writer process"
            victim = writers[0]
            owner = victim.parent()
            os.kill(victim.pid, signal.SIGKILL)
            before = len(results.answers)
            _wait_answers(results, before + 600)
            after = _writers_when(
                server, lambda found: any(w.ppid() == owner.pid for w in found if w != victim)
            )
            replaced = [w.pid for w in after if w != victim and w.ppid() == owner.pid]
        code = _stop(server)
    finally:
        if server.process.poll() is None:
            _stop(server)
    assert victim not in after and replaced, after  # its server started another
    assert "writer process stopped (exit code -9)" in server.err.text()
    assert code == 0
    statuses = results.statuses()
    assert statuses[202] > 700 and statuses[200] > 0, statuses
    assert set(statuses) <= {200, 202, 503}, statuses
    _check(database, results)


def test_one_delivery_sent_at_once_to_both_processes_is_stored_once(
    tmp_path: Path, database: str
) -> None:
    server = _serve(tmp_path, database)
    try:
        delivery, body, headers = _request("same")

        async def burst() -> list[tuple[int, int, int]]:
            async def one() -> tuple[int, int, int]:
                async with httpx.AsyncClient(timeout=30) as client:
                    answer = await client.post(server.hook, content=body, headers=headers)
                    return answer.status_code, answer.json()["data"]["id"], 0

            return await asyncio.gather(*(one() for _ in range(40)))

        answers = asyncio.run(burst())
        pids = {c.pid for c in server.children()}
        code = _stop(server)
    finally:
        if server.process.poll() is None:
            _stop(server)
    assert code == 0 and len(pids) == 2
    assert sorted(status for status, _, _ in answers) == [200] * 39 + [202]
    assert len({row for _, row, _ in answers}) == 1
    results = Results([(delivery, status, row) for status, row, _ in answers])
    assert len(_check(database, results)) == 1


def _backends_of(server: Server) -> list[int]:
    """The local ports of the server processes' connections to PostgreSQL."""
    ports: list[int] = []
    for child in server.children():
        for connection in child.net_connections(kind="tcp"):
            if connection.raddr and connection.raddr.port == _PG_PORT:
                ports.append(connection.laddr.port)
    return ports


_PG_PORT = 55432


@pytest.mark.postgres
def test_postgresql_backends_terminated_mid_load_lose_no_answered_delivery(
    tmp_path: Path, postgres_url: str
) -> None:
    from tests.jobs.procrastinate_schema import fresh_schema

    global _PG_PORT
    _PG_PORT = sa.engine.make_url(postgres_url).port or 5432
    with fresh_schema(postgres_url, "test_hook_faults") as database:
        server = _serve(tmp_path, database)
        killer = sa.create_engine(postgres_url)
        terminated = 0
        try:
            with _load(server.hook) as results:
                _wait_answers(results, 200)
                for _ in range(4):
                    ports = _backends_of(server)
                    with killer.connect() as conn:
                        terminated += sum(
                            bool(row[0])
                            for row in conn.execute(
                                sa.text(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                    " WHERE client_port = ANY(:ports)"
                                ),
                                {"ports": ports},
                            )
                        )
                    _wait_answers(results, len(results.answers) + 150)
            code = _stop(server)
        finally:
            killer.dispose()
            if server.process.poll() is None:
                _stop(server)
        assert terminated >= 4, terminated  # the faults fired
        assert code == 0
        statuses = results.statuses()
        assert statuses[202] > 500 and set(statuses) <= {200, 202, 503}, statuses
        _check(database, results)


def test_the_writer_process_ends_when_its_server_is_killed(tmp_path: Path) -> None:
    """`interlink serve` (one process) killed with SIGKILL: nobody closes its writer
    process, which must not outlive it; it sees its socket's end, ends, and what it
    acknowledged is stored."""
    database = _sqlite(tmp_path)
    (tmp_path / "interlink.yaml").write_text(
        f"database: {database}\n"
        f"webhooks:\n  shop:\n    scheme: standard\n    secret: {STANDARD_SECRET}\n"
    )
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "interlink", "serve", "--no-worker", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _healthy(port):
            assert process.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.1)
        delivery, body, headers = _request("one")
        answer = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/webhooks/shop", content=body, headers=headers
        )
        assert answer.status_code == 202, answer.text
        [writer] = psutil.Process(process.pid).children()
        assert "interlink.webhooks._inbox_child" in " ".join(writer.cmdline())
        process.kill()
        process.wait(10)
        writer.wait(10)  # raises TimeoutExpired if it outlives its server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    results = Results([(delivery, 202, int(answer.json()["data"]["id"]))])
    _check(database, results)
