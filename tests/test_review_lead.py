"""Review of the lead's ingest and serve changes (issue 12): the one-write answer cycle, the
PostgreSQL one-statement batch, `serve --processes N`'s supervisor and the SQLite writer
lock. Each defect found has a test here that failed on the code as it was."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from interlink.server import _protocol_httptools
from interlink.server._protocol_httptools import EnvelopeHttpToolsProtocol

# -- 1. one write per answer: the bytes on the wire are uvicorn's own cycle's ---------------


async def _wire_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]

    async def start(status: int = 200, length: int | None = 2) -> None:
        headers = [] if length is None else [(b"content-length", str(length).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})

    if path == "/ok":
        await start()
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/stream":
        await start(length=None)
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"de"})
    elif path == "/no-content":
        await start(204, None)
        await send({"type": "http.response.body", "body": b""})
    elif path == "/no-content-without-body":
        await start(204, None)  # returns without a body: uvicorn closes after the head
    elif path == "/empty-then-raise":
        await start(length=0)
        raise RuntimeError("failed after a complete head")
    elif path == "/raise-after-start":
        await start(length=5)
        raise RuntimeError("failed after the head")
    elif path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await start(length=len(body))
        await send({"type": "http.response.body", "body": body})
    elif path == "/answers-before-reading":
        await start()
        while (await receive())["type"] != "http.disconnect":
            pass


@pytest.fixture(scope="module")
def wire_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _wire_app,
        http=EnvelopeHttpToolsProtocol,
        lifespan="off",
        log_level="critical",
        date_header=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _exchange(port: int, parts: list[bytes]) -> bytes:
    """Send `parts` (a pause between them) and read until the server closes or stays
    quiet for 0.4 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.settimeout(0.4)
        received = b""
        for n, part in enumerate(parts):
            if n:
                time.sleep(0.15)
            client.sendall(part)
        while True:
            try:
                chunk = client.recv(65536)
            except TimeoutError:
                return received
            if not chunk:
                return received + b"<closed>"
            received += chunk


_GET = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
_EXCHANGES = {
    "one body": [_GET % b"/ok"],
    "HEAD": [b"HEAD /ok HTTP/1.1\r\nHost: x\r\n\r\n"],
    "streamed": [_GET % b"/stream"],
    "204": [_GET % b"/no-content"],
    "pipelined": [(_GET % b"/ok") * 2 + _GET % b"/stream" + _GET % b"/no-content"],
    "keep-alive off": [b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
    "HTTP/1.0": [b"GET /ok HTTP/1.0\r\n\r\n"],
    "100-continue": [
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        b"ping",
    ],
    # Defect 1: the head held back was lost when the app failed (or returned) after
    # starting its answer; uvicorn's cycle had written it before closing.
    "204 without a body message": [_GET % b"/no-content-without-body"],
    "raises after a complete head": [_GET % b"/empty-then-raise"],
    "raises after the head": [_GET % b"/raise-after-start"],
}


@pytest.mark.parametrize("name", list(_EXCHANGES))
def test_the_wire_bytes_are_uvicorns(
    name: str, wire_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = _exchange(wire_port, _EXCHANGES[name])
    with monkeypatch.context() as patch:
        patch.setattr(_protocol_httptools, "OneWriteCycle", RequestResponseCycle)
        uvicorns = _exchange(wire_port, _EXCHANGES[name])
    assert uvicorns.startswith(b"HTTP/1.1 "), uvicorns  # the exchange did answer
    assert ours == uvicorns


def test_a_refused_body_after_the_answer_started_still_gets_the_head(
    wire_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app answers before reading; the chunked body then turns out malformed and the
    protocol closes the connection. uvicorn's cycle had sent the head by then."""
    parts = [
        b"POST /answers-before-reading HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"zz\r\n",
    ]
    ours = _exchange(wire_port, parts)
    with monkeypatch.context() as patch:
        patch.setattr(_protocol_httptools, "OneWriteCycle", RequestResponseCycle)
        uvicorns = _exchange(wire_port, parts)
    assert uvicorns.startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"), uvicorns
    assert ours == uvicorns


async def test_a_start_waiting_for_a_paused_transport_leaves_receive_working() -> None:
    """Defect 2: with writes paused, `http.response.start` waited inside uvicorn's send
    while the cycle's transport was the head keeper: a `receive` meanwhile (an app
    listening for the disconnect, a 100-continue) failed with AttributeError."""
    import logging

    from uvicorn.protocols.http.flow_control import FlowControl

    from interlink.server._one_write import OneWriteCycle

    class Transport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.data = b""

        def write(self, data: Any) -> None:
            self.data += bytes(data)

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, name: str, default: object = None) -> object:
            return default

        def pause_reading(self) -> None:
            pass

        def resume_reading(self) -> None:
            pass

    transport = Transport()
    flow = FlowControl(transport)
    cycle = OneWriteCycle(
        scope={"type": "http", "method": "POST", "http_version": "1.1", "path": "/"},  # type: ignore[typeddict-item]
        transport=transport,
        flow=flow,
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=True,
        keep_alive=True,
        on_response=lambda: None,
    )
    flow.pause_writing()
    start = asyncio.create_task(
        cycle.send({"type": "http.response.start", "status": 200, "headers": []})
    )
    await asyncio.sleep(0.01)
    assert not start.done()  # waiting for the transport to drain
    cycle.more_body = False
    cycle.message_event.set()
    message = await asyncio.wait_for(cycle.receive(), 5)
    assert message["type"] == "http.request"
    flow.resume_writing()
    await asyncio.wait_for(start, 5)
    await cycle.send({"type": "http.response.body", "body": b"x"})
    assert transport.data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert transport.data.endswith(b"\r\n\r\n1\r\nx\r\n0\r\n\r\n")


# -- 2. the supervisor of `serve --processes N` ---------------------------------------------

_linux_only = pytest.mark.skipif(sys.platform != "linux", reason="fork and PR_SET_PDEATHSIG")


def _supervise(tmp_path: Path, body: str, *, run_for: float) -> tuple[int, str, str]:
    """Run a script ending in a Supervisor for `run_for` seconds, then SIGTERM it; its exit
    code, stdout and stderr."""
    script = tmp_path / "supervise.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "from interlink.cli._processes import Supervisor\n"
        "def report(line):\n"
        "    print(line, file=sys.stderr, flush=True)\n" + textwrap.dedent(body)
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(run_for)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    return process.returncode, out, err


@_linux_only
def test_a_sigterm_arriving_as_a_child_is_forked_is_not_swallowed(tmp_path: Path) -> None:
    """Defect 3: between the fork and the child's own handlers, a SIGTERM (the parent
    stopping everything, a restart racing a stop) ran the parent's handler copied into the
    child: it set a flag in the child's copy of the supervisor, and the child served on
    until the grace period ran out and it was killed. Here the first child gets its SIGTERM
    in that moment: it must die of it (and be started again)."""
    code, out, err = _supervise(
        tmp_path,
        """
        real_fork, forks = os.fork, []

        def fork():
            pid = real_fork()
            if pid == 0 and not forks:
                os.kill(os.getpid(), signal.SIGTERM)
            forks.append(pid)
            return pid

        os.fork = fork
        print("said before the fork")  # buffered: must not come out once per process

        def serve(index):
            print(f"serving {index}", flush=True)
            time.sleep(60)

        sys.exit(Supervisor(1, serve, report=report, poll=0.02, grace=3).run())
        """,
        run_for=2.5,
    )
    assert "server process 0" in err and "was killed by SIGTERM; starting it again" in err, err
    assert out.count("said before the fork") == 1, out
    assert out.count("serving 0") == 1, out  # the first never served
    assert code == 0, err


@_linux_only
def test_children_are_seen_to_die_when_sigchld_was_ignored(tmp_path: Path) -> None:
    """Defect 4: started with SIGCHLD ignored (inherited across exec from whatever started
    the parent), the kernel reaped the children itself: a child that died was never seen,
    never started again, and once all had died the supervisor returned 0 as if stopped."""
    code, _, err = _supervise(
        tmp_path,
        """
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)

        def serve(index):
            marker = f"died-{index}"
            if index == 1 and not os.path.exists(marker):
                open(marker, "w").close()
                sys.exit(3)
            time.sleep(60)

        sys.exit(Supervisor(2, serve, report=report, poll=0.02, grace=3).run())
        """,
        run_for=2.5,
    )
    assert "server process 1" in err and "exited with code 3; starting it again" in err, err
    assert code == 0, err


@_linux_only
def test_a_child_stuck_in_shutdown_is_killed_after_the_grace(tmp_path: Path) -> None:
    started = time.monotonic()
    code, _, err = _supervise(
        tmp_path,
        """
        def serve(index):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(60)

        sys.exit(Supervisor(2, serve, report=report, poll=0.02, grace=1).run())
        """,
        run_for=1.0,
    )
    # Killed after the grace period: a stop that went wrong exits 1 (session 8).
    assert code == 1 and time.monotonic() - started < 10
    assert err.count("did not stop; killed") == 2, err


def test_the_grace_outlasts_the_servers_own_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 5: `--processes` killed a process 15 s after SIGTERM, while the process gives
    connections 10 s and then the embedded worker's runs 30 s to reach a batch boundary:
    the first process was killed with its runs still stopping (one process is not)."""
    from interlink.cli import _processes, _serve
    from interlink.server.app import _WORKER_STOP_TIMEOUT

    made: list[dict[str, Any]] = []

    class Recording:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(kwargs)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(_processes, "Supervisor", Recording)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        _serve._serve_processes(
            None, sock, "127.0.0.1", 2, "warning", "h11", _serve.Http.h11, False, 1
        )
    (kwargs,) = made
    connections = 10  # timeout_graceful_shutdown in _run_server
    assert kwargs.get("grace", 15.0) > connections + _WORKER_STOP_TIMEOUT
    assert getattr(_serve, "_GRACEFUL_SHUTDOWN", connections) == connections


# -- 3. the writer lock beside the SQLite file ----------------------------------------------


def _sqlite_inbox(database: Path) -> tuple[Any, Any, Any]:
    from interlink.config import InterlinkConfig
    from interlink.jobs import open_queue
    from interlink.store import Store
    from interlink.webhooks import Inbox

    config = InterlinkConfig.model_validate({"database": f"sqlite:///{database}"})
    store = Store.open(config.database)
    queue = open_queue(config, store)
    return store, queue, Inbox(store, queue)


def test_a_lock_file_that_cannot_be_written_does_not_fail_the_webhooks(tmp_path: Path) -> None:
    """Defect 6: the lock is only about waiting well, yet a lock file the server could not
    open for writing (created by another user, in a read-only folder; here a directory in
    its place) failed every batch: every webhook answered 503, forever. `flock` needs no
    write access: the file is taken read-only, or the batch goes ahead without it."""
    from interlink.webhooks import Arrival

    database = tmp_path / "x.db"
    (tmp_path / "x.db.writer-lock").mkdir()
    store, queue, inbox = _sqlite_inbox(database)
    try:
        arrival = Arrival("shop", "d1", "t", time.time(), b"{}", {})
        stored = asyncio.run(inbox.accept(arrival, timeout=10))
        assert not stored.duplicate and stored.job_id is not None
    finally:
        inbox.close()
        queue.close()
        store.close()


def test_a_lock_file_that_cannot_be_opened_at_all_is_done_without(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from interlink.store import WriterLock

    (tmp_path / "x.db.writer-lock").symlink_to(tmp_path / "missing" / "lock")
    lock = WriterLock(tmp_path / "x.db")
    with caplog.at_level("WARNING", logger="interlink.store"):
        for _ in range(3):
            with lock.held():
                pass
    lock.close()
    warned = [r.getMessage() for r in caplog.records if "writer-lock" in r.getMessage()]
    assert len(warned) == 1 and "busy timeout" in warned[0], warned


def test_the_lock_file_has_the_databases_permissions(tmp_path: Path) -> None:
    """Defect 7: the lock file was created 0600: a second user allowed to write the
    database (a group-writable file, as SQLite's -wal and -shm follow) could not open it,
    and every batch of theirs failed. It follows the database's bits, past the umask."""
    from interlink.store import WriterLock

    database = tmp_path / "shared.db"
    database.touch()
    database.chmod(0o664)
    previous = os.umask(0o077)
    try:
        lock = WriterLock(database)
        with lock.held():
            pass
        lock.close()
    finally:
        os.umask(previous)
    assert (tmp_path / "shared.db.writer-lock").stat().st_mode & 0o777 == 0o664


# -- 4. the one-statement batch on PostgreSQL -----------------------------------------------


@pytest.mark.postgres
def test_two_servers_storing_the_same_deliveries_at_once_store_each_once(
    postgres_url: str,
) -> None:
    """Two inboxes (two server processes, three writer threads each) given the same
    deliveries in opposite orders, with odd ids: no batch fails (no deadlock between the
    statements), each delivery is stored once, named by exactly one job, and every job
    names only deliveries that point back at it."""
    import random

    import sqlalchemy as sa

    from interlink.config import InterlinkConfig
    from interlink.jobs import open_queue
    from interlink.store import Store, deliveries, jobs
    from interlink.webhooks import Arrival, Inbox
    from tests.jobs.procrastinate_schema import fresh_schema

    odd = ["NULL", "a,b", '"q"', "back\\slash", "{x}", " sp ", "é☃", "(1,2)", "'", "x" * 255]
    keys = [("shop", f"d{n:04}") for n in range(400)] + [("other", k) for k in odd]
    with fresh_schema(postgres_url, "test_review_lead") as url:
        config = InterlinkConfig.model_validate({"database": url})
        servers = []
        for _ in range(2):
            store = Store.open(config.database)
            queue = open_queue(config, store)
            servers.append((store, queue, Inbox(store, queue, max_batch=64)))
        outcomes: list[list[Any]] = [[], []]

        def send(index: int) -> None:
            order = list(keys)
            random.Random(index).shuffle(order)
            if index:
                order.reverse()
            inbox = servers[index][2]

            async def all_at_once() -> list[Any]:
                return list(
                    await asyncio.gather(
                        *(
                            inbox.accept(Arrival(s, d, None, time.time(), b"{}", {}), timeout=60)
                            for s, d in order
                        ),
                        return_exceptions=True,
                    )
                )

            outcomes[index] = asyncio.run(all_at_once())

        try:
            threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            with servers[0][0].engine.connect() as conn:
                stored = conn.execute(
                    sa.select(
                        deliveries.c.id,
                        deliveries.c.source,
                        deliveries.c.delivery_id,
                        deliveries.c.job_id,
                    )
                ).all()
                queued = conn.execute(sa.select(jobs.c.id, jobs.c.args)).all()
        finally:
            for store, queue, inbox in servers:
                inbox.close()
                queue.close()
                store.close()
    failures = [o for outcome in outcomes for o in outcome if isinstance(o, BaseException)]
    assert not failures, failures[:3]
    assert sorted((r.source, r.delivery_id) for r in stored) == sorted(keys)
    by_id = {r.id: r for r in stored}
    named = [d for j in queued for d in j.args["deliveries"]]
    assert sorted(named) == sorted(by_id), "a delivery in no job or in two"
    for job in queued:
        assert job.args["deliveries"], "a job with no deliveries"
        assert all(by_id[d].job_id == job.id for d in job.args["deliveries"])
    for outcome in outcomes:  # every answer names the stored row and its job
        for answer in outcome:
            assert by_id[answer.id].job_id == answer.job_id
