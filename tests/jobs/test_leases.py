"""Fenced job leases (issue 10): a worker that lost a job's lease stops it, and nothing it
still writes about that job (progress, its result, a hand-back) changes the job, which
another worker runs now. Both backends."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import JobContext, JobKinds, JobSpec, WorkerStats, open_queue
from interlink.jobs._procrastinate import ProcrastinateQueue
from interlink.jobs._sqlite_queue import SqliteQueue
from interlink.jobs._sqlite_worker import SqliteWorker
from interlink.store import Store
from tests.jobs.procrastinate_schema import fresh_schema

OTHER = "other-host:1:beef"


def config_for(url: str, **jobs: Any) -> InterlinkConfig:
    settings: dict[str, Any] = {"retry_delay": 0.01, "retry_max_delay": 0.05, "poll_interval": 0.05}
    settings.update(jobs)
    return InterlinkConfig.model_validate({"database": url, "jobs": settings})


@pytest.fixture
def sqlite_queue(tmp_path) -> Iterator[SqliteQueue]:
    config = config_for(f"sqlite:///{tmp_path / 'jobs.db'}", lease=0.6)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    assert isinstance(queue, SqliteQueue)
    yield queue
    queue.close()
    store.close()


def kinds_with(name: str, handler: Any) -> JobKinds:
    kinds = JobKinds.default()
    kinds.register(name, handler)
    return kinds


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def stop_or_timeout(context: JobContext, timeout: float) -> bool:
    """Wait until the job is told to stop (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while not context.should_stop():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def sql(queue: SqliteQueue, statement: str, *params: Any) -> None:
    db = sqlite3.connect(queue.path)
    db.execute(statement, params)
    db.commit()
    db.close()


# -- SQLite ----------------------------------------------------------------------------------


def test_a_sqlite_worker_whose_job_was_taken_over_stops_it_and_its_answer_changes_nothing(
    sqlite_queue: SqliteQueue, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease renewal finds the job is no longer this worker's: `should_stop()` turns
    true, and its late progress and result are not written."""
    queue = sqlite_queue
    told: list[bool] = []

    async def slow(context: JobContext) -> dict[str, Any]:
        context.report({"from": "stale", "step": 0})
        told.append(await stop_or_timeout(context, 4.0))
        context.report({"from": "stale", "step": 1})
        return {"from": "stale"}  # answering anyway, as a job that ignores should_stop does

    job = queue.enqueue(JobSpec("slow"))

    async def go() -> WorkerStats:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds_with("slow", slow), stop=stop))
        await until(lambda: queue.get(job.id).status == "running")  # type: ignore[union-attr]
        # Another worker reclaimed it (the lease ran out while this one was stalled) and
        # claimed it again: attempt 2 is its own.
        sql(
            queue,
            "UPDATE interlink_jobs SET worker = ?, attempts = 2, lease_until = ?, progress = NULL "
            "WHERE id = ?",
            OTHER,
            time.time() + 60,
            job.id,
        )
        await until(lambda: bool(told))
        stop.set()
        return await task

    with caplog.at_level(logging.WARNING, logger="interlink.jobs"):
        stats = asyncio.run(go())
    assert told == [True], "should_stop() never turned true after the lease was lost"
    row = queue.get(job.id)
    assert row is not None
    assert (row.status, row.worker, row.attempts) == ("running", OTHER, 2)
    assert (row.result, row.progress, row.finished_at) == (None, None, None)
    assert f"job {job.id}: lease lost to worker {OTHER}; its result is discarded" in caplog.text
    assert (stats.completed, stats.cancelled, stats.lost) == (0, 0, 1)


def test_a_sqlite_worker_claiming_a_job_again_stops_its_stale_attempt(
    sqlite_queue: SqliteQueue,
) -> None:
    """The job was queued again while this worker still ran it, and this same worker claims
    it again: the old attempt's answer must not end the new one (`worker = ?` alone cannot
    tell them apart; the attempt can)."""
    queue = sqlite_queue
    told: list[bool] = []
    second = asyncio.Event()

    async def twice(context: JobContext) -> dict[str, Any]:
        if context.job.attempts == 1:
            told.append(await stop_or_timeout(context, 4.0))
            return {"attempt": 1}
        second.set()
        await until(lambda: bool(told))
        await asyncio.sleep(0.1)  # time for the stale answer to reach the database
        return {"attempt": context.job.attempts}

    job = queue.enqueue(JobSpec("twice"))

    async def go() -> WorkerStats:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds_with("twice", twice), concurrency=2, stop=stop))
        await until(lambda: queue.get(job.id).status == "running")  # type: ignore[union-attr]
        # queued again, as another worker's reclaim does with a lease that ran out
        sql(
            queue,
            "UPDATE interlink_jobs SET status = 'queued', worker = NULL, lease_until = NULL, "
            "run_at = ? WHERE id = ?",
            time.time(),
            job.id,
        )
        await asyncio.wait_for(second.wait(), 10)
        await until(lambda: queue.get(job.id).done)  # type: ignore[union-attr]
        stop.set()
        return await task

    stats = asyncio.run(go())
    assert told == [True]
    final = queue.get(job.id)
    assert final is not None
    assert (final.status, final.attempts, final.result) == ("completed", 2, {"attempt": 2})
    assert (stats.completed, stats.lost) == (1, 1)


class _RenewedBeforeTheReclaim:
    """The reclaiming worker's connection; its owner renews the lease after the reclaim
    read it as expired and before the reclaim's transaction begins."""

    def __init__(self, db: sqlite3.Connection, renew: Callable[[], None]) -> None:
        self.db = db
        self.renew: Callable[[], None] | None = renew

    def execute(self, statement: str, *params: Any) -> sqlite3.Cursor:
        if statement == "BEGIN IMMEDIATE" and self.renew is not None:
            self.renew()
            self.renew = None
        return self.db.execute(statement, *params)


def test_a_sqlite_reclaim_is_a_compare_and_set_on_the_lease_it_read(
    sqlite_queue: SqliteQueue,
) -> None:
    queue = sqlite_queue
    job = queue.enqueue(JobSpec("noop"))
    expired = time.time() - 1
    sql(
        queue,
        "UPDATE interlink_jobs SET status = 'running', attempts = 1, worker = ?, "
        "lease_until = ?, started_at = ? WHERE id = ?",
        OTHER,
        expired,
        expired - 5,
        job.id,
    )
    renewed = time.time() + 60

    def renew() -> None:
        sql(queue, "UPDATE interlink_jobs SET lease_until = ? WHERE id = ?", renewed, job.id)

    worker = SqliteWorker(queue, JobKinds.default(), 1, asyncio.Event(), True)
    worker._reclaim(_RenewedBeforeTheReclaim(queue.connection(), renew), time.time())  # type: ignore[arg-type]
    row = queue.get(job.id)
    assert row is not None
    assert (row.status, row.worker, row.attempts) == ("running", OTHER, 1)
    assert worker.stats.reclaimed == 0


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def postgres_url_in_schema(postgres_url: str) -> Iterator[str]:
    with fresh_schema(postgres_url, "test_lease") as url:
        yield url


@pytest.fixture
def open_postgres(
    postgres_url_in_schema: str,
) -> Iterator[Callable[..., tuple[Store, ProcrastinateQueue]]]:
    """`open_postgres(**jobs)`: a store and queue in the test's schema, closed at the end."""
    opened: list[tuple[Store, ProcrastinateQueue]] = []

    def opener(**jobs: Any) -> tuple[Store, ProcrastinateQueue]:
        config = config_for(postgres_url_in_schema, **jobs)
        store = Store.open(config.database)
        queue = open_queue(config, store)
        assert isinstance(queue, ProcrastinateQueue)
        opened.append((store, queue))
        return store, queue

    yield opener
    for store, queue in opened:
        queue.close()
        store.close()


@pytest.mark.postgres
def test_a_postgres_worker_whose_job_was_recovered_stops_it_and_its_ack_changes_nothing(
    open_postgres: Callable[..., tuple[Store, ProcrastinateQueue]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker that was only slow: Procrastinate's stalled-job recovery ran its job again
    on another worker. The slow one is told to stop; its late acknowledgement changes
    neither interlink's row nor Procrastinate's job, which the new attempt still runs."""
    store, slow_queue = open_postgres(lease=1.5)
    _, other_queue = open_postgres(lease=1.5)
    told: list[bool] = []
    second = asyncio.Event()
    stale_acked = asyncio.Event()

    async def twice(context: JobContext) -> dict[str, Any]:
        if context.job.attempts == 1:
            told.append(await stop_or_timeout(context, 4.0))
            await asyncio.wait_for(second.wait(), 10)
            return {"attempt": 1}  # answering anyway
        second.set()
        await asyncio.wait_for(stale_acked.wait(), 15)
        return {"attempt": context.job.attempts}

    kinds = kinds_with("twice", twice)
    job = slow_queue.enqueue(JobSpec("twice"))

    def backend() -> dict[str, Any]:
        with store.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT p.status::text AS status, p.worker_id FROM procrastinate_jobs p "
                    "JOIN interlink_jobs i ON i.backend_id = p.id WHERE i.id = :id"
                ),
                {"id": job.id},
            ).one()
        return dict(row._mapping)

    async def go() -> tuple[WorkerStats, WorkerStats, dict[str, Any], Any]:
        stop_slow, stop_other = asyncio.Event(), asyncio.Event()
        slow = asyncio.create_task(slow_queue.work(kinds, concurrency=1, stop=stop_slow))
        await until(lambda: slow_queue.get(job.id).status == "running")  # type: ignore[union-attr]
        # Its heartbeat went stale and a recoverer pruned it: the job is stalled now.
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE procrastinate_jobs SET worker_id = NULL "
                    "WHERE id = (SELECT backend_id FROM interlink_jobs WHERE id = :id)"
                ),
                {"id": job.id},
            )
        other = asyncio.create_task(other_queue.work(kinds, concurrency=1, stop=stop_other))
        await asyncio.wait_for(second.wait(), 10)
        stop_slow.set()
        slow_stats = await slow  # the stale attempt answered and was acknowledged
        during = backend()
        row_during = slow_queue.get(job.id)
        stale_acked.set()
        await until(lambda: slow_queue.get(job.id).done)  # type: ignore[union-attr]
        stop_other.set()
        return slow_stats, await other, during, row_during

    with caplog.at_level(logging.WARNING, logger="interlink.jobs"):
        slow_stats, other_stats, during, row_during = asyncio.run(go())
    assert told == [True], "should_stop() never turned true after the job was recovered"
    assert row_during is not None
    assert (row_during.status, row_during.attempts, row_during.result) == ("running", 2, None)
    assert during["status"] == "doing"
    assert f"job {job.id}: lease lost to worker" in caplog.text
    final = slow_queue.get(job.id)
    assert final is not None
    assert (final.status, final.attempts, final.result) == ("completed", 2, {"attempt": 2})
    assert backend()["status"] == "succeeded"
    assert (slow_stats.completed, slow_stats.lost) == (0, 1)
    assert other_stats.completed == 1
