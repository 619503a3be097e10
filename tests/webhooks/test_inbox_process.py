"""The inbox with its writer in a process of its own (webhooks/_inbox_process.py), on a
real SQLite file and a real writer process: answers only after the commit, grouped
commits, refusals logged, and what happens when the writer dies, hangs or is stopped."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.store import jobs, rejections
from interlink.webhooks import (
    Arrival,
    InboxClosedError,
    InboxFullError,
    InboxWriterError,
    ProcessInbox,
    Refusal,
    Stored,
    _inbox_frames,
    _inbox_process,
)
from tests.webhooks.inbox_rig import arrival as _arrival, started as _started, stored as _stored


async def _gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether process `pid` ended (a zombie not yet reaped counts), letting the loop run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_deliveries_are_answered_after_their_commit_in_grouped_batches(opened) -> None:
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        results = await asyncio.gather(*(inbox.accept(_arrival(n), timeout=30) for n in range(200)))
        again = await inbox.accept(_arrival(7), timeout=30)
    finally:
        await inbox.aclose()
    rows = _stored(store)
    assert len(rows) == 200
    for n, stored in enumerate(results):
        assert isinstance(stored, Stored) and not stored.duplicate
        assert rows[f"d{n}"] == (stored.id, stored.job_id)  # the answer is what was committed
        assert stored.job_id is not None and stored.status == "pending"
    assert again.duplicate and again.id == results[7].id
    # 200 concurrent deliveries did not take 200 commits (the first waits for the start).
    assert 1 <= inbox.batches < 100
    with store.engine.connect() as conn:
        job_ids = {r.id for r in conn.execute(sa.select(jobs.c.id))}
    assert {s.job_id for s in results} <= job_ids
    assert inbox.pid is None  # stopped by aclose


async def test_the_writer_process_stores_what_was_sent_before_aclose(opened) -> None:
    """Shutting down with deliveries in flight: every delivery sent to the writer is
    stored and answered before it stops; none is answered and then lost."""
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    await inbox.accept(_arrival("warm"), timeout=30)
    waiting = [asyncio.ensure_future(inbox.accept(_arrival(n), timeout=30)) for n in range(300)]
    await asyncio.sleep(0)  # the frames are queued, the socket write comes next turn
    await inbox.aclose()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    answered = [o for o in outcomes if isinstance(o, Stored)]
    rows = _stored(store)
    assert len(answered) == 300, [o for o in outcomes if not isinstance(o, Stored)][:3]
    assert all(rows[f"d{n}"][0] == o.id for n, o in enumerate(outcomes) if isinstance(o, Stored))
    with pytest.raises(InboxClosedError):
        await inbox.accept(_arrival("late"))


async def test_refusals_reach_the_rejected_deliveries_log(opened) -> None:
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        inbox.reject(Refusal("shop", "signature_mismatch", 401, "no match", "10.0.0.7", 1.5))
        inbox.reject(Refusal("shop", "missing_header", 400, "ünïcode", None, 2.5))
        await inbox.accept(_arrival(1), timeout=30)  # after the refusals, on one socket
        deadline = time.monotonic() + 10
        found: list[Any] = []
        while time.monotonic() < deadline and len(found) < 2:
            with store.engine.connect() as conn:
                found = list(conn.execute(sa.select(rejections).order_by(rejections.c.id)))
            await asyncio.sleep(0.05)
    finally:
        await inbox.aclose()
    assert [(r.reason, r.status, r.address) for r in found] == [
        ("signature_mismatch", 401, "10.0.0.7"),
        ("missing_header", 400, None),
    ]


async def test_a_killed_writer_fails_what_waits_and_the_next_delivery_starts_another(
    opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the writer process with deliveries waiting on it: each is answered with an
    error (the request answers 503 and the sender retries), never with a success it did
    not commit; the next delivery starts a new writer, and a retried delivery that was
    committed before the kill is a duplicate."""
    monkeypatch.setattr(_inbox_process, "RESTART_AFTER", 0.2)
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        first = await _started(inbox)
        os.kill(first, signal.SIGSTOP)  # hold it, so that deliveries are surely waiting
        waiting = [asyncio.ensure_future(inbox.accept(_arrival(n), timeout=30)) for n in range(50)]
        await asyncio.sleep(0.2)
        os.kill(first, signal.SIGKILL)
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(o, InboxWriterError) for o in outcomes), outcomes[:3]
        assert await _gone(first)
        retried = await asyncio.gather(*(inbox.accept(_arrival(n), timeout=30) for n in range(50)))
        warm_again = await inbox.accept(_arrival("warm"), timeout=30)
        assert inbox.starts == 2 and inbox.pid not in (None, first)
    finally:
        await inbox.aclose()
    rows = _stored(store)
    assert all(rows[f"d{n}"][0] == s.id for n, s in enumerate(retried))
    assert warm_again.duplicate  # committed before the kill, answered once, never lost


async def test_a_writer_that_dies_at_once_is_not_restarted_in_a_loop(
    opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that dies right after its start (a database it cannot open) is started
    again at most once every RESTART_AFTER: deliveries in between wait for that start
    (no process is spawned per delivery, and none is refused while it comes)."""
    monkeypatch.setattr(_inbox_process, "RESTART_AFTER", 1.5)
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        await inbox.accept(_arrival("warm"), timeout=30)
        loop = asyncio.get_running_loop()
        for n in (2, 3):
            started = inbox._started_at
            pid = inbox.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert await _gone(pid)
            await asyncio.sleep(0.05)  # the loop sees the end of the socket
            stored = await asyncio.gather(
                *(inbox.accept(_arrival(f"{n}_{k}"), timeout=30) for k in range(20))
            )
            assert inbox.starts == n and not any(s.duplicate for s in stored)
            assert inbox._started_at - started >= 1.5  # not sooner than RESTART_AFTER
            assert loop.time() - inbox._started_at < 5
    finally:
        await inbox.aclose()
    assert len(_stored(store)) == 41


async def test_deliveries_waiting_for_a_stopped_writer_are_bounded_and_time_out(
    opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that hangs (stopped here): at most MAX_WAITING deliveries wait for it, the
    rest are refused at once; a wait that runs out is an error; and once it goes on, what
    it was sent is stored (a retry of a timed-out delivery is then a duplicate)."""
    monkeypatch.setattr(_inbox_process, "MAX_WAITING", 20)
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        pid = await _started(inbox)
        os.kill(pid, signal.SIGSTOP)
        try:
            timed = [
                asyncio.ensure_future(inbox.accept(_arrival(n), timeout=0.3)) for n in range(5)
            ]
            waiting = [
                asyncio.ensure_future(inbox.accept(_arrival(n), timeout=30)) for n in range(5, 20)
            ]
            await asyncio.sleep(0.05)
            started = time.monotonic()
            with pytest.raises(InboxFullError):
                await inbox.accept(_arrival(99), timeout=30)
            assert time.monotonic() - started < 0.1
            timed_out = await asyncio.gather(*timed, return_exceptions=True)
            assert all(isinstance(o, TimeoutError) for o in timed_out)
        finally:
            os.kill(pid, signal.SIGCONT)
        outcomes = await asyncio.gather(*waiting)
        assert all(not o.duplicate for o in outcomes)
        retried = await inbox.accept(_arrival(0), timeout=30)
        assert retried.duplicate  # the timed-out one was stored after all
    finally:
        await inbox.aclose()
    assert "d99" not in _stored(store)


async def test_the_writer_ignores_ctrl_c_and_ends_when_the_server_goes(opened) -> None:
    """Ctrl-C reaches the whole process group: the writer ignores it (the server stops and
    closes the socket after sending what it holds). A server that is gone (its end of the
    socket closed) ends the writer."""
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    pid = await _started(inbox)
    os.kill(pid, signal.SIGINT)
    stored = await inbox.accept(_arrival(1), timeout=30)
    assert not stored.duplicate and inbox.pid == pid
    inbox.close()  # without the loop: the socket's end, then the writer's exit
    assert await _gone(pid)
    assert set(_stored(store)) == {"dwarm", "d1"}


async def test_an_inbox_serves_one_event_loop(opened) -> None:
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        await inbox.accept(_arrival(1), timeout=30)

        def elsewhere() -> None:
            asyncio.run(inbox.accept(_arrival(2), timeout=30))

        with pytest.raises(RuntimeError, match="event loop"):
            await asyncio.to_thread(elsewhere)
    finally:
        await inbox.aclose()


def test_frames_carry_every_field_through(tmp_path: Path) -> None:
    reader = _inbox_frames.FrameReader()
    arrival = Arrival("shöp", "d-1", None, 1733.25, b"\x00\xff" * 70_000, {"x-a": "é"})
    refusal = Refusal("shop", "malformed_header", 400, "bad \udcff header", None, 2.5)
    stored = Stored(2**40, True, "processed", None)
    stream = (
        _inbox_frames.arrival_frame(9, arrival)
        + _inbox_frames.refusal_frame(refusal)
        + _inbox_frames.stored_frame(10, stored)
        + _inbox_frames.failed_frame(11, "OperationalError: disk I/O error")
        + _inbox_frames.batch_frame(3)
    )
    frames = []
    for start in range(0, len(stream), 4093):  # in pieces, as a socket delivers them
        frames.extend(reader.feed(stream[start : start + 4093]))
    assert reader.waiting == 0
    kinds = [kind for kind, _ in frames]
    assert kinds == [1, 2, 1, 2, 3]
    assert _inbox_frames.read_arrival(frames[0][1]) == (9, arrival)
    assert _inbox_frames.read_refusal(frames[1][1]) == refusal
    assert _inbox_frames.read_stored(frames[2][1]) == (10, stored)
    assert _inbox_frames.read_failed(frames[3][1]) == (11, "OperationalError: disk I/O error")
    assert _inbox_frames.read_batch(frames[4][1]) == 3


def test_the_writer_commits_with_a_synced_wal(opened) -> None:
    """A power cut must not lose an acknowledged delivery: the connection the writer
    process stores through (`InboxWriter._connect`, as the writer thread's) fsyncs the WAL
    at every commit (synchronous=FULL), where the store's other connections use NORMAL."""
    from interlink.webhooks._inbox import InboxWriter

    config, store, queue = opened
    writer = InboxWriter(store, queue)
    connection = writer._connect()
    try:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        writer._release(connection)
    with store.engine.connect() as other:
        assert other.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_the_writer_commits_at_most_max_batch_deliveries_at_once(
    opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything one read brings is stored, in transactions of at most MAX_BATCH (a
    SQLite built with fewer bound variables would fail a larger one as a whole), each
    answered as it commits."""
    import socket
    import threading

    from interlink.webhooks import _inbox_child
    from interlink.webhooks._inbox import InboxWriter

    monkeypatch.setattr(_inbox_child, "MAX_BATCH", 4)
    config, store, queue = opened
    writer = InboxWriter(store, queue)
    ours, theirs = socket.socketpair()
    stream = b"".join(_inbox_frames.arrival_frame(n, _arrival(n)) for n in range(10))
    reader = _inbox_frames.FrameReader()
    frames = reader.feed(stream)  # one read: ten arrivals
    answers = bytearray()

    def read_answers() -> None:
        while data := ours.recv(65536):
            answers.extend(data)

    reading = threading.Thread(target=read_answers, daemon=True)
    reading.start()
    ours.shutdown(socket.SHUT_WR)
    try:
        _inbox_child._loop(theirs, reader, writer, frames)
    finally:
        theirs.close()
        reading.join(10)
        ours.close()
    replies = _inbox_frames.FrameReader().feed(bytes(answers))
    batches = [_inbox_frames.read_batch(f) for k, f in replies if k == _inbox_frames.BATCH]
    stored = [_inbox_frames.read_stored(f)[0] for k, f in replies if k == _inbox_frames.STORED]
    assert batches == [4, 4, 2]
    assert stored == list(range(10))
    assert len(_stored(store)) == 10


async def test_the_writer_logs_at_the_servers_level_in_its_format(opened, capfd) -> None:
    """The writer process logs to the server's stderr at the server's level (`-v`,
    `--log-level`), in the command line's format; at the default WARNING it says nothing
    of a healthy run."""
    import logging

    config, store, queue = opened
    logger = logging.getLogger("interlink.webhooks")
    before = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        inbox = ProcessInbox(store, queue, config)
        try:
            await inbox.accept(_arrival(1), timeout=30)
        finally:
            await inbox.aclose()
    finally:
        logger.setLevel(before)
    err = capfd.readouterr().err
    assert re.search(r"\d\d:\d\d:\d\d,\d+ INFO interlink.webhooks: the inbox's writer", err), err
    assert re.search(r"DEBUG interlink.webhooks: stored 1 deliveries in [\d.]+ ms", err), err

    quiet = ProcessInbox(store, queue, config)
    try:
        await quiet.accept(_arrival(2), timeout=30)
    finally:
        await quiet.aclose()
    assert "interlink.webhooks" not in capfd.readouterr().err
