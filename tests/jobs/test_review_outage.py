"""Hostile review (session 8): the SQLite worker rides out a database it cannot write for a
while (another process holding SQLite's write lock past the busy timeout, a full disk):
it says so, waits, and carries on, and no acknowledgement is lost meanwhile."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.jobs import JobContext, JobKinds, JobSpec, WorkerStats, open_queue
from interlink.jobs._sqlite_queue import SqliteQueue
from interlink.store import Store


@pytest.fixture
def queue(tmp_path) -> Iterator[SqliteQueue]:
    settings = {"retry_delay": 0.01, "poll_interval": 0.05, "lease": 5.0}
    config = InterlinkConfig.model_validate(
        {"database": f"sqlite:///{tmp_path / 'jobs.db'}", "jobs": settings}
    )
    store = Store.open(config.database)
    opened = open_queue(config, store)
    assert isinstance(opened, SqliteQueue)
    yield opened
    opened.close()
    store.close()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_worker_outlives_a_write_lock_held_past_its_busy_timeout(
    queue: SqliteQueue, caplog: pytest.LogCaptureFixture
) -> None:
    """A job finishes while another process holds the database's write lock for longer
    than the busy timeout: the worker keeps its acknowledgement, and writes it (and runs
    the next job) once the lock is let go."""
    started: list[int] = []

    async def short(context: JobContext) -> dict[str, Any]:
        started.append(context.job.id)
        await asyncio.sleep(0.2)
        return {"n": context.job.args["n"]}

    kinds = JobKinds.default()
    kinds.register("short", short)
    first = queue.enqueue(JobSpec("short", {"n": 1}))
    # The worker runs on this thread's connection: a short busy timeout stands for a lock
    # held past the 10 s one.
    queue.connection().execute("PRAGMA busy_timeout=50")
    blocker = sqlite3.connect(queue.path, isolation_level=None)

    async def go() -> WorkerStats:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds, stop=stop))
        await until(lambda: bool(started))
        blocker.execute("BEGIN IMMEDIATE")  # the job finishes while this holds the lock
        await asyncio.sleep(1.0)
        assert not task.done(), f"the worker died: {task.exception()!r}"
        blocker.execute("ROLLBACK")
        second = queue.enqueue(JobSpec("short", {"n": 2}))
        await until(lambda: queue.get(second.id).status == "completed")  # type: ignore[union-attr]
        stop.set()
        return await task

    with caplog.at_level(logging.WARNING, logger="interlink.jobs"):
        stats = asyncio.run(go())
    blocker.close()
    job = queue.get(first.id)
    assert job is not None
    assert (job.status, job.result, job.attempts) == ("completed", {"n": 1}, 1)
    assert stats.completed == 2
    assert "database is locked" in caplog.text


def test_progress_the_database_cannot_take_does_not_fail_the_job(queue: SqliteQueue) -> None:
    """`report()` during the outage: progress is best effort (it is written with the
    result anyway); the job must not fail, and spend an attempt, for it."""
    reported = asyncio.Event()
    blocker = sqlite3.connect(queue.path, isolation_level=None)

    async def chatty(context: JobContext) -> dict[str, Any]:
        await asyncio.sleep(0.6)  # past the progress throttle
        blocker.execute("BEGIN IMMEDIATE")
        try:
            context.report({"step": 1})
        finally:
            blocker.execute("ROLLBACK")
        reported.set()
        return {"done": True}

    kinds = JobKinds.default()
    kinds.register("chatty", chatty)
    job = queue.enqueue(JobSpec("chatty"))
    queue.connection().execute("PRAGMA busy_timeout=50")
    stats = asyncio.run(queue.work(kinds, burst=True))
    blocker.close()
    row = queue.get(job.id)
    assert row is not None
    assert reported.is_set()
    assert (row.status, row.attempts, row.progress) == ("completed", 1, {"step": 1}), row.error
    assert stats.completed == 1
