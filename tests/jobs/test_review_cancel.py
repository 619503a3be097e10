"""Hostile review (session 8): a cancelled job stays cancelled on SQLite.

`cancel()` of a running job sets `cancel_requested`; the worker sees it within a quarter
second. Whatever way the attempt then ends without completing (it failed and would be
retried, the worker stopped and hands it back, the worker died and the job is reclaimed),
the job must end `cancelled`, recorded once, and never run again.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.jobs import JobContext, JobKinds, JobSpec, _sqlite_worker, open_queue
from interlink.jobs._sqlite_queue import SqliteQueue
from interlink.store import Store


def config_for(url: str, **jobs: Any) -> InterlinkConfig:
    settings: dict[str, Any] = {"retry_delay": 0.01, "retry_max_delay": 0.05, "poll_interval": 0.05}
    settings.update(jobs)
    return InterlinkConfig.model_validate({"database": url, "jobs": settings})


@pytest.fixture
def queue(tmp_path) -> Iterator[SqliteQueue]:
    config = config_for(f"sqlite:///{tmp_path / 'jobs.db'}", lease=2.0, max_attempts=5)
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


def status(queue: SqliteQueue, job_id: int) -> str:
    job = queue.get(job_id)
    assert job is not None
    return job.status


def test_a_cancelled_job_whose_attempt_then_fails_is_cancelled_not_retried(
    queue: SqliteQueue,
) -> None:
    """The job was in a call that failed (a timeout, a 502) when the cancel came: its
    attempt ends in an error that would be retried. It must not run again."""
    runs: list[int] = []

    async def fragile(context: JobContext) -> None:
        runs.append(context.job.attempts)
        while not context.should_stop():
            await asyncio.sleep(0.01)
        raise RuntimeError("the upstream call failed while the job was being cancelled")

    kinds = JobKinds.default()
    kinds.register("fragile", fragile)
    job = queue.enqueue(JobSpec("fragile"))

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds, stop=stop))
        await until(lambda: bool(runs))
        queue.cancel(job.id)
        await until(lambda: status(queue, job.id) != "running")
        await asyncio.sleep(0.5)  # long enough for a retry (backoff 0.05 s at most)
        stop.set()
        await task

    asyncio.run(go())
    final = queue.get(job.id)
    assert final is not None
    assert runs == [1], f"the cancelled job ran again: attempts {runs}"
    assert final.status == "cancelled", (final.status, final.error)
    assert final.finished_at is not None


def test_a_cancel_the_stopping_worker_had_not_seen_yet_is_not_handed_back(
    queue: SqliteQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker stops (SIGTERM) right after the cancel was written, before its quarter-
    second look at `cancel_requested`: the attempt is not handed back to run again."""
    monkeypatch.setattr(_sqlite_worker, "_CANCEL_CHECK_EVERY", 3600.0)
    runs: list[int] = []

    async def long(context: JobContext) -> None:
        runs.append(context.job.attempts)
        while not context.should_stop():
            await asyncio.sleep(0.01)
        from interlink.errors import JobCancelledError

        raise JobCancelledError("stopped at a batch boundary")

    kinds = JobKinds.default()
    kinds.register("long", long)
    job = queue.enqueue(JobSpec("long"))

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds, stop=stop))
        await until(lambda: bool(runs))
        await asyncio.sleep(0.05)  # past the worker's first cancel look
        assert queue.cancel(job.id).cancel_requested  # type: ignore[union-attr]
        stop.set()
        await task

    asyncio.run(go())
    final = queue.get(job.id)
    assert final is not None
    assert final.status == "cancelled", (final.status, final.error)


def test_a_cancelled_job_whose_worker_died_is_cancelled_not_run_again(
    queue: SqliteQueue,
) -> None:
    """kill -9 of the worker while a cancel was pending: the reclaim records the
    cancellation instead of queueing the job to run again."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    job = queue.enqueue(JobSpec("counted"))
    db = sqlite3.connect(queue.path)
    db.execute(
        "UPDATE interlink_jobs SET status = 'running', attempts = 1, worker = ?, "
        "lease_until = ?, started_at = ?, cancel_requested = 1 WHERE id = ?",
        (f"{socket.gethostname()}:{dead.pid}:dead", time.time() + 60, time.time(), job.id),
    )
    db.commit()
    db.close()
    runs: list[int] = []

    async def counted(context: JobContext) -> None:
        runs.append(context.job.attempts)

    kinds = JobKinds.default()
    kinds.register("counted", counted)
    stats = asyncio.run(queue.work(kinds, burst=True))
    final = queue.get(job.id)
    assert final is not None
    assert runs == [], "the job whose cancel was pending ran again"
    assert final.status == "cancelled", (final.status, final.error)
    assert final.finished_at is not None
    assert "cancel" in (final.error or ""), final.error
    assert stats.reclaimed == 1


# -- PostgreSQL (Procrastinate): the same promise, in files this review does not own ------


@pytest.fixture
def pg_queue(postgres_url: str) -> Iterator[Any]:
    from interlink.jobs._procrastinate import ProcrastinateQueue
    from tests.jobs.procrastinate_schema import fresh_schema

    with fresh_schema(postgres_url, "test_review_cancel") as url:
        config = config_for(url, lease=2.0, max_attempts=5)
        store = Store.open(config.database)
        opened = open_queue(config, store)
        assert isinstance(opened, ProcrastinateQueue)
        yield opened
        opened.close()
        store.close()


@pytest.mark.postgres
def test_a_cancelled_postgres_job_whose_attempt_then_fails_is_cancelled_not_retried(
    pg_queue: Any,
) -> None:
    queue = pg_queue
    runs: list[int] = []

    async def fragile(context: JobContext) -> None:
        runs.append(context.job.attempts)
        while not context.should_stop():
            await asyncio.sleep(0.01)
        raise RuntimeError("the upstream call failed while the job was being cancelled")

    kinds = JobKinds.default()
    kinds.register("fragile", fragile)
    job = queue.enqueue(JobSpec("fragile"))

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds, stop=stop))
        await until(lambda: bool(runs))
        queue.cancel(job.id)
        await until(lambda: queue.get(job.id).status != "running")
        await asyncio.sleep(1.0)
        stop.set()
        await task

    asyncio.run(go())
    final = queue.get(job.id)
    assert runs == [1], f"the cancelled job ran again: attempts {runs}"
    assert final.status == "cancelled", (final.status, final.error)
