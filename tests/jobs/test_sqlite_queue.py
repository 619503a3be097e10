"""The embedded SQLite queue through the Queue protocol, on a real database file."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.errors import ConfigError, JobCancelledError
from interlink.jobs import JobContext, JobFilter, JobKinds, JobSpec, open_queue, pipeline_job
from interlink.jobs._sqlite_queue import SqliteQueue
from interlink.store import Store, jobs


def make(tmp_path, **jobs_settings: Any) -> tuple[InterlinkConfig, Store, SqliteQueue]:
    settings = {"retry_delay": 0.01, "retry_max_delay": 0.05, "poll_interval": 0.05}
    settings.update(jobs_settings)
    config = InterlinkConfig.model_validate(
        {"database": f"sqlite:///{tmp_path / 'jobs.db'}", "jobs": settings}
    )
    store = Store.open(config.database)
    queue = open_queue(config, store)
    assert isinstance(queue, SqliteQueue)
    return config, store, queue


@pytest.fixture
def setup(tmp_path) -> Iterator[tuple[InterlinkConfig, Store, SqliteQueue]]:
    config, store, queue = make(tmp_path)
    yield config, store, queue
    queue.close()
    store.close()


def drain(queue: SqliteQueue, kinds: JobKinds, concurrency: int = 4) -> Any:
    return asyncio.run(queue.work(kinds, concurrency=concurrency, burst=True))


def kinds_with(**handlers: Any) -> JobKinds:
    kinds = JobKinds.default()
    for name, handler in handlers.items():
        kinds.register(name.replace("_", "."), handler)
    return kinds


def test_enqueue_get_list_and_counts(setup) -> None:
    _, _, queue = setup
    first = queue.enqueue(JobSpec("noop"))
    second = queue.enqueue(pipeline_job("customers", full_refresh=True, priority=3))
    assert first.status == "queued" and first.attempts == 0 and first.max_attempts == 5
    got = queue.get(second.id)
    assert got is not None
    assert got.args == {"pipeline": "customers", "full_refresh": True}
    assert (got.kind, got.pipeline, got.lock, got.priority) == (
        "pipeline.run",
        "customers",
        "pipeline:customers",
        3,
    )
    assert queue.get(9999) is None
    assert [job.id for job in queue.list()] == [second.id, first.id]
    assert [job.id for job in queue.list(JobFilter(pipeline="customers"))] == [second.id]
    assert [job.id for job in queue.list(JobFilter(kind="noop"))] == [first.id]
    assert [job.id for job in queue.list(JobFilter(before=second.id))] == [first.id]
    assert [job.id for job in queue.list(JobFilter(limit=1))] == [second.id]
    assert queue.counts() == {
        "queued": 2,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }


def test_a_filter_outside_its_range_is_refused() -> None:
    with pytest.raises(ValueError):
        JobFilter(limit=0)
    with pytest.raises(ValueError):
        JobFilter(before=0)


def test_the_same_idempotency_key_gives_back_the_same_job(setup) -> None:
    _, _, queue = setup
    first = queue.enqueue(JobSpec("noop", idempotency_key="abc"))
    again = queue.enqueue(JobSpec("noop", idempotency_key="abc"))
    other = queue.enqueue(JobSpec("noop", idempotency_key="xyz"))
    assert again.id == first.id != other.id
    assert len(queue.list()) == 2


def test_enqueue_joins_the_callers_transaction(setup) -> None:
    _, store, queue = setup
    with pytest.raises(RuntimeError), store.transaction() as conn:
        queue.enqueue(JobSpec("noop", args={"n": 1}), conn=conn)
        raise RuntimeError("the caller's work failed")
    assert queue.list() == []
    with store.transaction() as conn:
        job = queue.enqueue(JobSpec("noop", args={"n": 2}), conn=conn)
        assert job.status == "queued"
    assert [j.args for j in queue.list()] == [{"n": 2}]
    with store.transaction() as conn:
        assert queue.enqueue(JobSpec("noop", idempotency_key="k"), conn=conn).id == (
            queue.enqueue(JobSpec("noop", idempotency_key="k"), conn=conn).id
        )


def test_jobs_run_by_priority_then_in_order(setup) -> None:
    _, _, queue = setup
    seen: list[int] = []

    async def record(context: JobContext) -> dict[str, Any]:
        seen.append(context.job.args["n"])
        return {"n": context.job.args["n"]}

    for n, priority in [(1, 0), (2, 0), (3, 5), (4, -1), (5, 5)]:
        queue.enqueue(JobSpec("record", {"n": n}, priority=priority))
    stats = drain(queue, kinds_with(record=record), concurrency=1)
    assert seen == [3, 5, 1, 2, 4]
    assert stats.completed == 5
    done = queue.list()
    assert {job.status for job in done} == {"completed"}
    assert all(job.result == {"n": job.args["n"]} for job in done)
    assert all(job.finished_at and job.started_at and job.attempts == 1 for job in done)


def test_jobs_sharing_a_lock_never_overlap(setup) -> None:
    _, _, queue = setup
    intervals: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}

    async def slow(context: JobContext) -> None:
        start = time.monotonic()
        await asyncio.sleep(0.02)
        intervals[context.job.args["lock"]].append((start, time.monotonic()))

    for n in range(6):
        lock = "a" if n % 2 else "b"
        queue.enqueue(JobSpec("slow", {"lock": lock}, lock=lock))
    started = time.monotonic()
    drain(queue, kinds_with(slow=slow), concurrency=4)
    elapsed = time.monotonic() - started
    for spans in intervals.values():
        spans.sort()
        assert len(spans) == 3
        assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))
    # two locks: two jobs at a time, so about three rounds, not six
    assert elapsed < 6 * 0.02 + 1.0


def test_a_failing_job_is_retried_with_backoff_then_dead_lettered(setup) -> None:
    _, _, queue = setup
    attempts: list[float] = []

    async def flaky(context: JobContext) -> None:
        attempts.append(time.monotonic())
        raise RuntimeError(f"upstream down (attempt {context.job.attempts})")

    job = queue.enqueue(JobSpec("flaky", max_attempts=3))

    async def go() -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds_with(flaky=flaky), concurrency=2, stop=stop))
        for _ in range(200):
            await asyncio.sleep(0.01)
            current = queue.get(job.id)
            assert current is not None
            if current.done:
                break
        stop.set()
        return await task

    stats = asyncio.run(go())
    final = queue.get(job.id)
    assert final is not None
    assert final.status == "failed"
    assert final.attempts == 3
    assert final.error == "RuntimeError: upstream down (attempt 3) (gave up after 3 attempts)"
    assert len(attempts) == 3
    assert all(later - earlier >= 0.004 for earlier, later in itertools.pairwise(attempts))
    assert (stats.retried, stats.failed) == (2, 1)


def test_errors_that_retrying_cannot_fix_fail_at_once(setup) -> None:
    _, _, queue = setup

    async def misconfigured(context: JobContext) -> None:
        raise ConfigError("no pipeline named 'nope'", key="pipeline")

    unknown = queue.enqueue(JobSpec("no.such.kind"))
    broken = queue.enqueue(JobSpec("misconfigured"))
    missing = queue.enqueue(pipeline_job("nope"))
    drain(queue, kinds_with(misconfigured=misconfigured))
    for job_id in (unknown.id, broken.id, missing.id):
        job = queue.get(job_id)
        assert job is not None and job.status == "failed" and job.attempts == 1
    assert "unknown job kind 'no.such.kind'" in (queue.get(unknown.id).error or "")
    assert "unknown pipeline 'nope'" in (queue.get(missing.id).error or "")


def test_a_cancelled_queued_job_never_runs(setup) -> None:
    _, _, queue = setup
    ran: list[int] = []

    async def record(context: JobContext) -> None:
        ran.append(context.job.id)

    keep = queue.enqueue(JobSpec("record"))
    drop = queue.enqueue(JobSpec("record"))
    cancelled = queue.cancel(drop.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert queue.cancel(424242) is None
    drain(queue, kinds_with(record=record))
    assert ran == [keep.id]
    # a finished job is given back unchanged
    finished = queue.cancel(keep.id)
    assert finished is not None and finished.status == "completed"


def test_a_running_job_stops_at_its_next_batch_when_cancelled(setup) -> None:
    _, _, queue = setup
    batches: list[int] = []

    async def long(context: JobContext) -> dict[str, Any]:
        for batch in range(1000):
            if context.should_stop():
                raise JobCancelledError("stopped", job_id=context.job.id)
            batches.append(batch)
            context.report({"batch": batch})
            await asyncio.sleep(0.01)
        return {"batches": 1000}

    job = queue.enqueue(JobSpec("long"))

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds_with(long=long), concurrency=1, stop=stop))
        while not batches:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.6)  # long enough for a progress report to be saved
        running = queue.get(job.id)
        assert running is not None and running.status == "running"
        assert running.progress is not None and running.progress["batch"] >= 1
        asked = queue.cancel(job.id)
        assert asked is not None and asked.status == "running" and asked.cancel_requested
        for _ in range(300):
            await asyncio.sleep(0.01)
            if queue.get(job.id).done:  # type: ignore[union-attr]
                break
        stop.set()
        await task

    asyncio.run(go())
    final = queue.get(job.id)
    assert final is not None
    assert final.status == "cancelled"
    assert final.error == "cancelled while running"
    assert len(batches) < 400


def test_a_stopping_worker_hands_its_running_job_back(setup) -> None:
    _, _, queue = setup

    async def long(context: JobContext) -> None:
        while not context.should_stop():
            await asyncio.sleep(0.01)
        raise JobCancelledError("stopped at a batch boundary")

    job = queue.enqueue(JobSpec("long"))

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds_with(long=long), stop=stop))
        while queue.get(job.id).status != "running":  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(go())
    back = queue.get(job.id)
    assert back is not None
    assert (back.status, back.attempts) == ("queued", 0)


def _claim_as(queue: SqliteQueue, job_id: int, worker: str, lease_until: float) -> None:
    db = sqlite3.connect(queue.path)
    db.execute(
        "UPDATE interlink_jobs SET status='running', attempts=attempts+1, worker=?, "
        "lease_until=?, started_at=? WHERE id=?",
        (worker, lease_until, time.time(), job_id),
    )
    db.commit()
    db.close()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_job_whose_worker_died_runs_again(setup) -> None:
    _, _, queue = setup
    import socket

    dead = f"{socket.gethostname()}:{_dead_pid()}:cafe0000"
    orphan = queue.enqueue(JobSpec("noop"))
    expired = queue.enqueue(JobSpec("noop"))
    exhausted = queue.enqueue(JobSpec("noop", max_attempts=1))
    # a live process elsewhere, but its lease ran out long ago
    _claim_as(queue, orphan.id, dead, time.time() + 3600)
    _claim_as(queue, expired.id, "other-host:1:beef", time.time() - 1)
    _claim_as(queue, exhausted.id, dead, time.time() + 3600)
    stats = drain(queue, JobKinds.default())
    assert stats.reclaimed == 3
    for job_id in (orphan.id, expired.id):
        job = queue.get(job_id)
        assert job is not None and (job.status, job.attempts) == ("completed", 2)
    lost = queue.get(exhausted.id)
    assert lost is not None and lost.status == "failed"
    assert lost.error == (
        "its worker was lost (killed or its lease ran out); gave up after 1 attempts"
    )


def test_a_late_answer_from_a_worker_that_lost_its_lease_changes_nothing(setup) -> None:
    """The acknowledgement names the claim it ends (worker and attempt): neither another
    worker's claim nor a later claim by the same worker is ended by it."""
    from interlink.jobs._sqlite_worker import _DONE

    _, _, queue = setup
    job = queue.enqueue(JobSpec("noop"))
    _claim_as(queue, job.id, "me:1:aaaa", time.time() + 60)  # attempt 1: mine
    _claim_as(queue, job.id, "me:1:aaaa", time.time() + 60)  # attempt 2: mine again
    db = sqlite3.connect(queue.path)
    late = ("completed", '{"late": true}', None, time.time(), None)
    for worker, attempt in (("me:1:aaaa", 1), ("someone-else:1:bbbb", 2)):
        assert db.execute(_DONE, (*late, job.id, worker, attempt)).rowcount == 0
    db.commit()
    db.close()
    current = queue.get(job.id)
    assert current is not None and (current.status, current.result) == ("running", None)


def test_durability_full_makes_commits_reach_the_disk(tmp_path) -> None:
    _, store, queue = make(tmp_path, durability="full")
    queue.enqueue(JobSpec("noop"))
    assert queue.connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    (tmp_path / "normal").mkdir()
    _, store2, normal = make(tmp_path / "normal")
    normal.enqueue(JobSpec("noop"))
    assert normal.connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    for q, s in ((queue, store), (normal, store2)):
        q.close()
        s.close()


def test_enqueues_from_other_threads_wake_an_idle_worker(tmp_path) -> None:
    _, store, queue = make(tmp_path, poll_interval=30)

    async def go() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(JobKinds.default(), stop=stop))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        job = await asyncio.to_thread(queue.enqueue, JobSpec("noop"))
        while queue.get(job.id).status != "completed":  # type: ignore[union-attr]
            await asyncio.sleep(0.005)
        latency = time.monotonic() - started
        stop.set()
        await task
        return latency

    assert asyncio.run(go()) < 1.0
    queue.close()
    store.close()


def test_a_job_committed_by_another_process_is_seen_within_the_poll(tmp_path) -> None:
    config, store, queue = make(tmp_path, poll_interval=30)
    script = (
        "import sqlite3, time, sys; db = sqlite3.connect(sys.argv[1]); "
        'db.execute("INSERT INTO interlink_jobs (kind, args, status, priority, attempts, '
        "max_attempts, run_at, created_at, cancel_requested) VALUES ('noop', '{}', 'queued', "
        '0, 0, 5, ?, ?, 0)", (time.time(), time.time())); db.commit()'
    )

    async def go() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(JobKinds.default(), stop=stop))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script, queue.path])
        while queue.counts()["completed"] == 0:
            await asyncio.sleep(0.005)
        latency = time.monotonic() - started
        stop.set()
        await task
        return latency

    # the subprocess start dominates; the worker noticed via data_version, not the 30 s poll
    assert asyncio.run(go()) < 5.0
    queue.close()
    store.close()


def test_the_queue_needs_a_database_file(tmp_path) -> None:
    config = InterlinkConfig.model_validate({"database": "sqlite:///:memory:"})
    store = Store(sa.create_engine("sqlite://"))
    with pytest.raises(ValueError, match="SQLite database file"):
        SqliteQueue(store, config)


def test_jobs_table_rows_are_plain_sql(setup) -> None:
    _, store, queue = setup
    job = queue.enqueue(JobSpec("noop", args={"x": [1, 2]}))
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job.id)).one()
    assert row.args == {"x": [1, 2]} and row.status == "queued"
    assert os.path.exists(queue.path)
