"""The inbox (webhooks/_inbox.py) when its database cannot take writes: a writer that is
stuck must not make the server hold every delivery that arrives meanwhile, and a disk that
is full answers errors and stores nothing half."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import open_queue
from interlink.store import Store, deliveries
from interlink.webhooks import Arrival, Inbox, _inbox


def _arrival(n: int | str) -> Arrival:
    body = f'{{"id":"evt_{n}","type":"t"}}'.encode()
    return Arrival("shop", f"d{n}", "t", time.time(), body, {})


def _open(tmp_path: Path) -> tuple[Store, Any]:
    config = InterlinkConfig.model_validate({"database": f"sqlite:///{tmp_path / 'hooks.db'}"})
    store = Store.open(config.database)
    return store, open_queue(config, store)


def _stored(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [r.delivery_id for r in conn.execute(sa.select(deliveries.c.delivery_id))]


def test_deliveries_waiting_for_a_stuck_writer_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another server process holds the writer lock and hangs (stopped, or its disk
    stalled in the commit's fsync): this writer waits, and every delivery that arrives
    meanwhile would wait in memory, body and all, with no bound. Past MAX_WAITING they are
    refused at once (the request answers 503, the sender retries)."""
    monkeypatch.setattr(_inbox, "MAX_WAITING", 20, raising=False)
    store, queue = _open(tmp_path)
    inbox = Inbox(store, queue)
    hung = os.open(f"{tmp_path / 'hooks.db'}.writer-lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(hung, fcntl.LOCK_EX)  # the other process's hold

    async def flood() -> list[Any]:
        waiting = [asyncio.ensure_future(inbox.accept(_arrival(n), timeout=5)) for n in range(20)]
        await asyncio.sleep(0.3)  # the writer took a batch and waits for the lock
        started = time.monotonic()
        outcomes: list[Any] = []
        for n in range(20, 60):
            try:
                outcomes.append(await inbox.accept(_arrival(n), timeout=0.05))
            except Exception as exc:
                outcomes.append(exc)
        refused_in = time.monotonic() - started
        fcntl.flock(hung, fcntl.LOCK_UN)  # the other process goes on
        first = await asyncio.gather(*waiting)
        return [refused_in, outcomes, first]

    try:
        refused_in, outcomes, first = asyncio.run(flood())
        waiting_now = len(inbox._waiting)
    finally:
        os.close(hung)
        inbox.close()
    # 20 in the writer's hands, 20 waiting (each answered TimeoutError, stored later),
    # then no more: refused at once.
    assert all(isinstance(o, TimeoutError) for o in outcomes[:20]), outcomes[:3]
    assert all(type(o).__name__ == "InboxFullError" for o in outcomes[20:]), outcomes[20:23]
    assert "20 deliveries (" in str(outcomes[20])
    assert refused_in < 20 * 0.05 + 1.0  # the refused ones did not wait for their timeouts
    assert len(first) == 20 and waiting_now <= 20
    assert sorted(_stored(store)) == sorted(f"d{n}" for n in range(40))
    queue.close()
    store.close()


def test_deliveries_waiting_are_bounded_by_their_bytes_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_WAITING deliveries of 1 MiB each would be 10 GiB: their bodies count too."""
    monkeypatch.setattr(_inbox, "MAX_WAITING_BYTES", 3_000_000, raising=False)
    store, queue = _open(tmp_path)
    inbox = Inbox(store, queue)
    hung = os.open(f"{tmp_path / 'hooks.db'}.writer-lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(hung, fcntl.LOCK_EX)
    big = b'{"pad":"' + b"x" * 1_000_000 + b'"}'

    async def flood() -> list[Any]:
        first = asyncio.ensure_future(inbox.accept(_arrival("held"), timeout=5))
        await asyncio.sleep(0.3)  # in the writer's hands, waiting for the lock
        outcomes: list[Any] = []
        for n in range(4):
            arrival = Arrival("shop", f"big{n}", "t", time.time(), big, {})
            try:
                outcomes.append(await inbox.accept(arrival, timeout=0.05))
            except Exception as exc:
                outcomes.append(exc)
        fcntl.flock(hung, fcntl.LOCK_UN)
        await first
        return outcomes

    try:
        outcomes = asyncio.run(flood())
    finally:
        os.close(hung)
        inbox.close()
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["TimeoutError", "TimeoutError", "InboxFullError", "InboxFullError"]
    assert sorted(_stored(store)) == ["big0", "big1", "dheld"]
    queue.close()
    store.close()


def test_a_full_disk_answers_an_error_stores_nothing_and_the_inbox_recovers(
    tmp_path: Path,
) -> None:
    """SQLITE_FULL (simulated with max_page_count on the writer's connection) in the
    middle of a batch: every request of the batch gets the error, no delivery is stored
    without its job, and the inbox stores again once there is room."""
    store, queue = _open(tmp_path)
    inbox = Inbox(store, queue)
    real = inbox._connect
    limits: list[int] = []

    def small_disk() -> sa.Connection:
        connection = real()
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        assert isinstance(pages, int)
        limits.append(pages + 1)
        connection.exec_driver_sql(f"PRAGMA max_page_count={pages + 1}")
        connection.commit()
        return connection

    inbox._connect = small_disk  # type: ignore[method-assign]
    big = b'{"pad":"' + b"x" * 200_000 + b'"}'

    async def run() -> tuple[list[Any], Any]:
        arrivals = [Arrival("shop", f"full{n}", "t", time.time(), big, {}) for n in range(8)]
        outcomes = await asyncio.gather(
            *(inbox.accept(a, timeout=10) for a in arrivals), return_exceptions=True
        )
        inbox._connect = real  # type: ignore[method-assign]
        again = await inbox.accept(_arrival("after"), timeout=10)
        return list(outcomes), again

    try:
        outcomes, again = asyncio.run(run())
    finally:
        inbox.close()
    assert limits, "the full disk was never simulated"
    assert all(isinstance(o, (sa.exc.OperationalError, sqlite3.OperationalError)) for o in outcomes)
    assert "full" in str(outcomes[0])
    assert again.duplicate is False
    assert _stored(store) == ["dafter"]
    with sqlite3.connect(tmp_path / "hooks.db") as db:
        jobs = db.execute("SELECT count(*) FROM interlink_jobs").fetchone()[0]
    assert jobs == 1
    queue.close()
    store.close()


def test_a_writer_lock_holder_killed_mid_batch_frees_the_inbox_at_once(tmp_path: Path) -> None:
    """Another server process holds the writer lock (in the middle of its batch) and is
    killed with SIGKILL: the kernel lets the lock go, and this inbox's waiting deliveries
    are stored at once, not after a timeout."""
    import signal
    import subprocess
    import sys
    import textwrap

    store, queue = _open(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from interlink.store import WriterLock
                with WriterLock({str(tmp_path / "hooks.db")!r}).held():
                    print("held", flush=True)
                    time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    inbox = Inbox(store, queue)

    async def run() -> tuple[bool, float, Any]:
        waiting = asyncio.ensure_future(inbox.accept(_arrival("k"), timeout=10))
        await asyncio.sleep(0.5)
        blocked = not waiting.done()
        holder.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        stored = await waiting
        return blocked, time.monotonic() - killed, stored

    try:
        blocked, after, stored = asyncio.run(run())
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)
        holder.stdout.close()
        inbox.close()
    assert blocked, "the lock was not held by the other process"
    assert stored.duplicate is False and after < 1.0, after
    assert _stored(store) == ["dk"]
    queue.close()
    store.close()


def test_a_backlog_of_large_bodies_is_written_in_batches_of_bounded_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog taken by count alone (512 deliveries of 1 MiB) made one transaction, on
    PostgreSQL one statement, of half a GiB. Batches stop at MAX_BATCH_BYTES of bodies.
    Here the cap is 2,500 bytes and the bodies 1,000: while another process holds the
    writer lock, 30 deliveries pile up; they are then written two at a time."""
    monkeypatch.setattr(_inbox, "MAX_BATCH_BYTES", 2_500, raising=False)
    store, queue = _open(tmp_path)
    inbox = Inbox(store, queue)
    written: list[int] = []
    write = inbox._write

    def recording(conn: Any, batch: Any) -> Any:
        result = write(conn, batch)  # blocks on the writer lock while it is held
        written.append(sum(len(a.body) for a in batch))
        return result

    monkeypatch.setattr(inbox, "_write", recording)
    hung = os.open(f"{tmp_path / 'hooks.db'}.writer-lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(hung, fcntl.LOCK_EX)

    def big(n: int) -> Arrival:
        return Arrival("shop", f"d{n}", "t", time.time(), b"x" * 1_000, {})

    async def backlog() -> list[int]:
        waiting = [asyncio.ensure_future(inbox.accept(big(n), timeout=10)) for n in range(30)]
        await asyncio.sleep(0.3)  # the writer holds its first batch, waiting for the lock
        before = list(written)
        fcntl.flock(hung, fcntl.LOCK_UN)
        await asyncio.gather(*waiting)
        return before

    try:
        before = asyncio.run(backlog())
    finally:
        os.close(hung)
        inbox.close()
    assert before == [], "nothing was written while the lock was held: all 30 piled up"
    assert max(written) <= 2_500, written
    assert sum(written) == 30 * 1_000 and len(written) >= 15
    assert sorted(_stored(store)) == sorted(f"d{n}" for n in range(30))
    queue.close()
    store.close()


def test_batch_length_stops_at_the_count_or_the_bytes() -> None:
    cap = _inbox.MAX_BATCH_BYTES
    assert _inbox.batch_length([]) == 0
    assert _inbox.batch_length([10] * 600) == _inbox.MAX_BATCH
    assert _inbox.batch_length([10] * 600, 7) == 7
    assert _inbox.batch_length([cap // 2, cap // 2, 1]) == 2
    assert _inbox.batch_length([cap + 1, 1]) == 1, "one larger than the cap goes alone"
    assert _inbox.batch_length([1, cap]) == 1
