"""The PostgreSQL queue (`ProcrastinateQueue`) through the Queue protocol, on a real server.

Each test gets its own schema (search_path in the URL), so tests never see each other's
jobs and Procrastinate's schema is applied fresh every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.errors import ConfigError, JobCancelledError, QueueSchemaError
from interlink.jobs import (
    JobContext,
    JobFilter,
    JobKinds,
    JobSpec,
    WorkerStats,
    open_queue,
    pipeline_job,
)
from interlink.jobs._procrastinate import ProcrastinateQueue, apply_schema
from interlink.store import Store, create_engine
from tests.jobs import crash_worker
from tests.jobs.procrastinate_schema import fresh_schema

pytestmark = pytest.mark.postgres

WORKER = Path(__file__).with_name("crash_worker.py")


@pytest.fixture
def schema_url(postgres_url: str) -> Iterator[str]:
    with fresh_schema(postgres_url, "test_pq") as url:
        yield url


def make(url: str, **jobs_settings: Any) -> tuple[InterlinkConfig, Store, ProcrastinateQueue]:
    settings: dict[str, Any] = {
        "retry_delay": 0.01,
        "retry_max_delay": 0.05,
        "poll_interval": 0.05,
        "lease": 1.5,
    }
    settings.update(jobs_settings)
    config = InterlinkConfig.model_validate({"database": url, "jobs": settings})
    store = Store.open(config.database)
    try:
        queue = open_queue(config, store)
    except BaseException:
        store.close()
        raise
    assert isinstance(queue, ProcrastinateQueue) and queue.backend == "postgresql"
    return config, store, queue


@pytest.fixture
def make_queue(schema_url: str) -> Iterator[Callable[..., tuple[Store, ProcrastinateQueue]]]:
    """A factory: `make_queue(**jobs_settings)`; everything it made is closed at the end."""
    made: list[tuple[Store, ProcrastinateQueue]] = []

    def factory(**jobs_settings: Any) -> tuple[Store, ProcrastinateQueue]:
        _, store, queue = make(schema_url, **jobs_settings)
        made.append((store, queue))
        return store, queue

    yield factory
    for store, queue in made:
        queue.close()
        store.close()


@pytest.fixture
def setup(make_queue) -> tuple[Store, ProcrastinateQueue]:
    return make_queue()


def drain(queue: ProcrastinateQueue, kinds: JobKinds, concurrency: int = 4) -> WorkerStats:
    return asyncio.run(queue.work(kinds, concurrency=concurrency, burst=True))


async def work_until(
    queue: ProcrastinateQueue,
    kinds: JobKinds,
    done: Callable[[], bool],
    *,
    concurrency: int = 2,
    timeout: float = 15.0,
) -> WorkerStats:
    """Run a worker until `done()` holds (checked every 10 ms), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(queue.work(kinds, concurrency=concurrency, stop=stop))
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert time.monotonic() < deadline, "timed out"
            assert not task.done(), "the worker ended early"
            await asyncio.sleep(0.01)
    finally:
        stop.set()
    return await task


def kinds_with(**handlers: Any) -> JobKinds:
    kinds = JobKinds.default()
    for name, handler in handlers.items():
        kinds.register(name.replace("_", "."), handler)
    return kinds


def procrastinate_job(store: Store, backend_id: int | None) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT status::text AS status, lock, priority, args, task_name, queue_name "
                "FROM procrastinate_jobs WHERE id = :id"
            ),
            {"id": backend_id},
        ).one()
    return dict(row._mapping)


def done(queue: ProcrastinateQueue, job_id: int) -> Callable[[], bool]:
    def check() -> bool:
        job = queue.get(job_id)
        return job is not None and job.done

    return check


# -- the record ----------------------------------------------------------------------------


def test_enqueue_get_list_and_counts(setup) -> None:
    store, queue = setup
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
    assert got.run_at == pytest.approx(got.created_at) and got.started_at is None
    assert queue.get(9999) is None
    assert [job.id for job in queue.list()] == [second.id, first.id]
    assert [job.id for job in queue.list(JobFilter(pipeline="customers"))] == [second.id]
    assert [job.id for job in queue.list(JobFilter(kind="noop"))] == [first.id]
    assert [job.id for job in queue.list(JobFilter(status="queued", limit=1))] == [second.id]
    assert [job.id for job in queue.list(JobFilter(before=second.id))] == [first.id]
    assert queue.list(JobFilter(status="running")) == []
    assert queue.counts() == {
        "queued": 2,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }


def test_each_job_has_its_procrastinate_job_with_lock_and_priority(setup) -> None:
    store, queue = setup
    job = queue.enqueue(pipeline_job("orders", priority=7))
    with store.engine.connect() as conn:
        backend_id = conn.execute(
            sa.text("SELECT backend_id FROM interlink_jobs WHERE id = :id"), {"id": job.id}
        ).scalar()
    assert procrastinate_job(store, backend_id) == {
        "status": "todo",
        "lock": "pipeline:orders",
        "priority": 7,
        "args": {"job_id": job.id},
        "task_name": "interlink.run_job",
        "queue_name": "interlink",
    }


def test_the_same_idempotency_key_gives_back_the_same_job(setup) -> None:
    store, queue = setup
    first = queue.enqueue(JobSpec("noop", idempotency_key="abc"))
    again = queue.enqueue(JobSpec("noop", idempotency_key="abc"))
    other = queue.enqueue(JobSpec("noop", idempotency_key="xyz"))
    assert again.id == first.id != other.id
    assert len(queue.list()) == 2
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 2


def test_concurrent_enqueues_with_one_key_make_one_job(setup) -> None:
    store, queue = setup
    barrier = threading.Barrier(4)
    ids: list[int] = []

    def enqueue() -> None:
        barrier.wait()
        ids.append(queue.enqueue(JobSpec("noop", idempotency_key="same")).id)

    threads = [threading.Thread(target=enqueue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and len(ids) == 4
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 1


def test_enqueue_joins_the_callers_transaction(setup) -> None:
    store, queue = setup
    with pytest.raises(RuntimeError), store.transaction() as conn:
        queue.enqueue(JobSpec("noop", args={"n": 1}), conn=conn)
        raise RuntimeError("the caller's work failed")
    assert queue.list() == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 0
    with store.transaction() as conn:
        job = queue.enqueue(JobSpec("noop", args={"n": 2}), conn=conn)
        assert job.status == "queued"
        # not visible outside the transaction until it commits
        assert queue.get(job.id) is None
    assert [j.args for j in queue.list()] == [{"n": 2}]
    with store.transaction() as conn:
        assert queue.enqueue(JobSpec("noop", idempotency_key="k"), conn=conn).id == (
            queue.enqueue(JobSpec("noop", idempotency_key="k"), conn=conn).id
        )
    assert drain(queue, JobKinds.default()).completed == 2


def test_procrastinate_schema_is_applied_once_when_two_processes_start_together(
    schema_url: str,
) -> None:
    engines = [create_engine(schema_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    created: list[bool] = []

    def start(engine: sa.Engine) -> None:
        barrier.wait()
        created.append(apply_schema(engine))

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created) == [False, True]
    assert apply_schema(engines[0]) is False
    with engines[0].connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar()
    for engine in engines:
        engine.dispose()


# -- running -------------------------------------------------------------------------------


def test_a_procrastinate_schema_older_than_the_installed_release_is_refused(
    schema_url, make_queue
) -> None:
    """Upgrading Procrastinate without its migrations: refused at start, naming what is
    missing and how to migrate, instead of failing job after job at run time."""
    store, _ = make_queue()
    with store.engine.begin() as conn:  # as a schema from before retry_job_v2 would be
        conn.execute(sa.text("DROP FUNCTION procrastinate_retry_job_v2"))
    # passwords (ignored by the test server's trust auth) in both places a URL can hold one
    scheme, _, rest = schema_url.partition("://")
    userinfo, _, host = rest.partition("@")
    with_secrets = f"{scheme}://{userinfo.split(':')[0]}:usersecret@{host}&password=qsecret"
    with pytest.raises(QueueSchemaError) as caught:
        make(with_secrets)
    message = str(caught.value)
    assert "missing procrastinate_retry_job_v2" in message
    assert "usersecret" not in message and "qsecret" not in message, message
    assert "procrastinate schema --migrations-path" in message
    assert caught.value.exit_code == 2 and "\n" not in message


def test_jobs_run_by_priority_then_in_order(setup) -> None:
    store, queue = setup
    seen: list[int] = []

    async def record(context: JobContext) -> dict[str, Any]:
        seen.append(context.job.args["n"])
        return {"n": context.job.args["n"]}

    for n, priority in [(1, 0), (2, 0), (3, 5), (4, -1), (5, 5)]:
        queue.enqueue(JobSpec("record", {"n": n}, priority=priority))
    stats = drain(queue, kinds_with(record=record), concurrency=1)
    assert seen == [3, 5, 1, 2, 4]
    assert stats.completed == 5 and stats.by_kind == {"record": 5}
    finished = queue.list()
    assert {job.status for job in finished} == {"completed"}
    assert all(job.result == {"n": job.args["n"]} for job in finished)
    assert all(job.finished_at and job.started_at and job.attempts == 1 for job in finished)
    # host:pid:one-per-work()-call
    assert all(job.worker and f":{os.getpid()}:" in job.worker for job in finished)
    with store.engine.connect() as conn:
        statuses = conn.execute(sa.text("SELECT DISTINCT status::text FROM procrastinate_jobs"))
        assert statuses.scalars().all() == ["succeeded"]


def test_jobs_sharing_a_lock_never_overlap(setup) -> None:
    _, queue = setup
    intervals: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}

    async def slow(context: JobContext) -> None:
        start = time.monotonic()
        await asyncio.sleep(0.02)
        intervals[context.job.args["lock"]].append((start, time.monotonic()))

    for n in range(6):
        lock = "a" if n % 2 else "b"
        queue.enqueue(JobSpec("slow", {"lock": lock}, lock=lock))
    started = time.monotonic()
    # one burst runs them all: a job waiting for its lock runs once the lock is free
    stats = drain(queue, kinds_with(slow=slow), concurrency=4)
    elapsed = time.monotonic() - started
    assert stats.completed == 6
    for spans in intervals.values():
        spans.sort()
        assert len(spans) == 3
        assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))
    assert elapsed < 6 * 0.02 + 2.0


def test_jobs_enqueued_one_commit_at_a_time_while_two_workers_run_all_complete(setup) -> None:
    _, queue = setup
    count = 400

    async def go() -> list[WorkerStats]:
        stop = asyncio.Event()
        workers = [
            asyncio.create_task(queue.work(JobKinds.default(), concurrency=4, stop=stop))
            for _ in range(2)
        ]
        try:
            await asyncio.to_thread(lambda: [queue.enqueue(JobSpec("noop")) for _ in range(count)])
            deadline = time.monotonic() + 30
            while queue.counts()["completed"] < count:
                assert time.monotonic() < deadline, queue.counts()
                await asyncio.sleep(0.02)
        finally:
            stop.set()
        return list(await asyncio.gather(*workers))

    stats = asyncio.run(go())
    assert sum(s.completed for s in stats) == count
    assert queue.counts() == {
        "queued": 0,
        "running": 0,
        "completed": count,
        "failed": 0,
        "cancelled": 0,
    }
    assert all(job.attempts == 1 for job in queue.list(JobFilter(limit=1000)))


def test_a_job_its_claim_could_not_see_is_started_on_its_own(setup, monkeypatch) -> None:
    """Procrastinate's fetch function sees jobs committed after the claim statement began;
    the interlink UPDATE beside it does not. Here the UPDATE never matches, as if every
    job had been committed at that moment."""
    _, queue = setup
    from interlink.jobs import _procrastinate_worker

    blind = _procrastinate_worker.CLAIM.replace("AND i.attempts < i.max_attempts", "AND false")
    assert blind != _procrastinate_worker.CLAIM
    monkeypatch.setattr(_procrastinate_worker, "CLAIM", blind)
    ids = [queue.enqueue(JobSpec("noop")).id for _ in range(3)]
    cancelled = queue.enqueue(JobSpec("noop"))
    queue.cancel(cancelled.id)
    assert drain(queue, JobKinds.default()).completed == 3
    assert [queue.get(i).attempts for i in ids] == [1, 1, 1]  # type: ignore[union-attr]
    assert queue.get(cancelled.id).status == "cancelled"  # type: ignore[union-attr]


def test_a_delayed_job_waits_for_its_time(setup) -> None:
    _, queue = setup
    later = queue.enqueue(JobSpec("noop", delay=0.6))
    assert later.run_at == pytest.approx(later.created_at + 0.6)
    assert drain(queue, JobKinds.default()).completed == 0
    assert queue.get(later.id).status == "queued"  # type: ignore[union-attr]
    asyncio.run(work_until(queue, JobKinds.default(), done(queue, later.id)))
    finished = queue.get(later.id)
    assert finished is not None and finished.status == "completed"
    assert finished.started_at is not None and finished.started_at >= later.run_at


def test_run_at_and_started_at_are_on_the_databases_clock(setup) -> None:
    """PostgreSQL releases a delayed job (`scheduled_at <= now()` in Procrastinate's fetch),
    so `run_at` is that `scheduled_at` and `started_at` the claim's `now()`: one clock, and
    `started_at >= run_at` holds whatever the worker's clock says. (With `started_at` taken
    from the worker's clock before the claim was sent, it once came out 0.3 ms early.)"""
    store, queue = setup
    later = queue.enqueue(JobSpec("noop", delay=0.3))
    asyncio.run(work_until(queue, JobKinds.default(), done(queue, later.id)))
    finished = queue.get(later.id)
    assert finished is not None and finished.started_at is not None
    with store.engine.connect() as conn:
        scheduled, started = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM p.scheduled_at), (SELECT extract(epoch FROM e.at) "
                "FROM procrastinate_events e WHERE e.job_id = p.id AND e.type = 'started') "
                "FROM procrastinate_jobs p JOIN interlink_jobs i ON i.backend_id = p.id "
                "WHERE i.id = :id"
            ),
            {"id": later.id},
        ).one()
    assert later.run_at == finished.run_at == pytest.approx(float(scheduled), abs=1e-6)
    assert finished.started_at == pytest.approx(float(started), abs=1e-6)
    assert finished.started_at >= finished.run_at


def test_a_failing_job_is_retried_with_backoff_then_dead_lettered(setup) -> None:
    store, queue = setup
    attempts: list[float] = []

    async def flaky(context: JobContext) -> None:
        attempts.append(time.monotonic())
        raise RuntimeError(f"upstream down (attempt {context.job.attempts})")

    job = queue.enqueue(JobSpec("flaky", max_attempts=3))
    stats = asyncio.run(work_until(queue, kinds_with(flaky=flaky), done(queue, job.id)))
    final = queue.get(job.id)
    assert final is not None
    assert final.status == "failed"
    assert final.attempts == 3
    assert final.error == "RuntimeError: upstream down (attempt 3) (gave up after 3 attempts)"
    assert final.finished_at is not None
    assert len(attempts) == 3
    # retry_delay 10 ms doubling with jitter: at least 5 ms, then 10 ms between attempts
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.005 and gaps[1] >= 0.01
    assert (stats.retried, stats.failed) == (2, 1)
    with store.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status::text FROM procrastinate_jobs")).scalar()
    assert status == "failed"


def test_a_retry_waits_in_the_database_not_in_the_worker(make_queue) -> None:
    _, queue = make_queue(retry_delay=1.0, retry_max_delay=5)
    calls: list[int] = []

    async def once_then_ok(context: JobContext) -> dict[str, int]:
        calls.append(context.job.attempts)
        if context.job.attempts == 1:
            raise RuntimeError("try later")
        return {"attempt": context.job.attempts}

    job = queue.enqueue(JobSpec("once.then.ok"))
    kinds = kinds_with(once_then_ok=once_then_ok)
    drain(queue, kinds)
    waiting = queue.get(job.id)
    assert waiting is not None and waiting.status == "queued" and waiting.attempts == 1
    assert waiting.error == "RuntimeError: try later" and waiting.run_at > waiting.started_at
    asyncio.run(work_until(queue, kinds, done(queue, job.id)))
    final = queue.get(job.id)
    assert final is not None and final.status == "completed" and final.result == {"attempt": 2}
    assert calls == [1, 2]
    # equal jitter: the wait is between half the step and the step
    assert 0.5 <= final.started_at - waiting.started_at < 3.0  # type: ignore[operator]


def test_errors_that_retrying_cannot_fix_fail_at_once(setup) -> None:
    _, queue = setup

    async def misconfigured(context: JobContext) -> None:
        raise ConfigError("no pipeline named 'nope'", key="pipeline")

    unknown = queue.enqueue(JobSpec("no.such.kind"))
    broken = queue.enqueue(JobSpec("misconfigured"))
    missing = queue.enqueue(pipeline_job("nope"))
    stats = drain(queue, kinds_with(misconfigured=misconfigured))
    assert stats.failed == 3 and stats.retried == 0
    for job_id in (unknown.id, broken.id, missing.id):
        job = queue.get(job_id)
        assert job is not None and job.status == "failed" and job.attempts == 1
    assert "unknown job kind 'no.such.kind'" in (queue.get(unknown.id).error or "")  # type: ignore[union-attr]
    assert "unknown pipeline 'nope'" in (queue.get(missing.id).error or "")  # type: ignore[union-attr]


def test_progress_reports_are_saved(setup) -> None:
    _, queue = setup

    async def quick(context: JobContext) -> None:
        context.report({"step": 1})
        context.report({"step": 2})

    job = queue.enqueue(JobSpec("quick"))
    drain(queue, kinds_with(quick=quick))
    final = queue.get(job.id)
    # a job faster than the half-second throttle still leaves its last report
    assert final is not None and final.status == "completed" and final.progress == {"step": 2}


# -- cancelling ----------------------------------------------------------------------------


def test_a_cancelled_queued_job_never_runs(setup) -> None:
    store, queue = setup
    ran: list[int] = []

    async def record(context: JobContext) -> None:
        ran.append(context.job.id)

    keep = queue.enqueue(JobSpec("record"))
    drop = queue.enqueue(JobSpec("record"))
    cancelled = queue.cancel(drop.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert cancelled.finished_at is not None and cancelled.error == "cancelled before it ran"
    assert queue.cancel(424242) is None
    with store.engine.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.text(
                    "SELECT j.id, p.status::text FROM interlink_jobs j "
                    "JOIN procrastinate_jobs p ON p.id = j.backend_id"
                )
            ).all()
        )
    assert statuses == {keep.id: "todo", drop.id: "cancelled"}
    drain(queue, kinds_with(record=record))
    assert ran == [keep.id]
    # a finished job is given back unchanged
    finished = queue.cancel(keep.id)
    assert finished is not None and finished.status == "completed"
    assert queue.counts()["cancelled"] == 1


def test_a_running_job_stops_at_its_next_batch_when_cancelled(setup) -> None:
    store, queue = setup
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

    async def go() -> WorkerStats:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds_with(long=long), concurrency=1, stop=stop))
        while not batches:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.7)  # long enough for a progress report to be saved
        running = queue.get(job.id)
        assert running is not None and running.status == "running"
        assert running.progress is not None and running.progress["batch"] >= 1
        # the cancel comes from another process's view: through the database only
        with store.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE interlink_jobs SET cancel_requested = true WHERE id = :id"),
                {"id": job.id},
            )
        for _ in range(300):
            await asyncio.sleep(0.01)
            if queue.get(job.id).done:  # type: ignore[union-attr]
                break
        stop.set()
        return await task

    stats = asyncio.run(go())
    final = queue.get(job.id)
    assert final is not None
    assert final.status == "cancelled" and final.cancel_requested
    assert final.error == "cancelled while running" and final.finished_at is not None
    assert len(batches) < 150
    assert stats.cancelled == 1
    with store.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status::text FROM procrastinate_jobs")).scalar()
    assert status == "aborted"


def test_cancel_through_the_queue_reaches_a_job_running_in_this_process(setup) -> None:
    _, queue = setup
    started = asyncio.Event()

    async def long(context: JobContext) -> None:
        started.set()
        while not context.should_stop():
            await asyncio.sleep(0.005)
        raise JobCancelledError("stopped", job_id=context.job.id)

    job = queue.enqueue(JobSpec("long"))

    async def go() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds_with(long=long), stop=stop))
        await started.wait()
        asked_at = time.monotonic()
        asked = queue.cancel(job.id)
        assert asked is not None and asked.status == "running" and asked.cancel_requested
        while not queue.get(job.id).done:  # type: ignore[union-attr]
            await asyncio.sleep(0.005)
        latency = time.monotonic() - asked_at
        stop.set()
        await task
        return latency

    assert asyncio.run(go()) < 0.4  # told at once, not at the next half-second look
    assert queue.get(job.id).status == "cancelled"  # type: ignore[union-attr]


def test_an_abort_through_procrastinate_cancels_the_job(setup) -> None:
    """Procrastinate's own tools (`procrastinate_cancel_job_v1(id, abort => true)`, as its
    CLI and admin use) interrupt the running job; interlink records it as cancelled."""
    store, queue = setup
    started = asyncio.Event()

    async def forever(context: JobContext) -> None:
        started.set()
        await asyncio.sleep(3600)

    job = queue.enqueue(JobSpec("forever"))

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(kinds_with(forever=forever), stop=stop))
        await started.wait()
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT procrastinate_cancel_job_v1(backend_id, true, false) "
                    "FROM interlink_jobs WHERE id = :id"
                ),
                {"id": job.id},
            )
        deadline = time.monotonic() + 10
        while not queue.get(job.id).done:  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(go())
    final = queue.get(job.id)
    assert final is not None and final.status == "cancelled" and final.cancel_requested
    with store.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status::text FROM procrastinate_jobs")).scalar()
    assert status == "aborted"


def test_a_stopping_worker_hands_its_running_job_back(setup) -> None:
    store, queue = setup

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
    assert (back.status, back.attempts, back.worker) == ("queued", 0, None)
    with store.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status::text FROM procrastinate_jobs")).scalar()
    assert status == "todo"
    assert drain(queue, JobKinds.default()).completed == 0  # "long" is not a known kind here…
    final = queue.get(job.id)
    assert final is not None and final.status == "failed" and final.attempts == 1


# -- lost workers --------------------------------------------------------------------------


@contextlib.contextmanager
def worker_process(url: str, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """A crash_worker.py process, ready to claim jobs; killed at the end if still alive."""
    process = subprocess.Popen(
        [sys.executable, str(WORKER), url, "--lease", "1.5", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_jobs_of_a_killed_worker_run_again_or_are_dead_lettered(schema_url, make_queue) -> None:
    store, queue = make_queue()
    crash_worker.create_tables(store.engine)
    again = queue.enqueue(JobSpec("crash.hang", priority=2))
    exhausted = queue.enqueue(JobSpec("crash.hang", max_attempts=1, priority=1))
    held = queue.enqueue(JobSpec("crash.hang", lock="only-one"))
    blocked = queue.enqueue(JobSpec("crash.effect", lock="only-one"))
    with worker_process(schema_url, "--concurrency", "3") as victim:
        wait_for(lambda: queue.counts()["running"] == 3)
        killed_at = time.monotonic()
        kill(victim)
    assert queue.get(blocked.id).status == "queued"  # type: ignore[union-attr]

    # crash.hang runs until stopped, so here it completes at once instead
    async def finish(context: JobContext) -> None:
        return None

    kinds = crash_worker.kinds()
    kinds.register("crash.hang", finish)

    def settled() -> bool:
        return all(queue.get(j.id).done for j in (again, exhausted, held, blocked))  # type: ignore[union-attr]

    stats = asyncio.run(work_until(queue, kinds, settled, timeout=20))
    recovered_after = time.monotonic() - killed_at
    rerun = queue.get(again.id)
    assert rerun is not None and (rerun.status, rerun.attempts) == ("completed", 2)
    dead = queue.get(exhausted.id)
    assert dead is not None and dead.status == "failed" and dead.attempts == 1
    assert dead.error == (
        "its worker was lost (killed or its lease ran out); gave up after 1 attempts"
    )
    # the lock held by the killed job was freed: the next job of that lock ran too
    assert queue.get(held.id).attempts == 2  # type: ignore[union-attr]
    assert {queue.get(held.id).status, queue.get(blocked.id).status} == {"completed"}  # type: ignore[union-attr]
    assert stats.reclaimed == 3
    # lease 1.5 s, recovery every 0.5 s, plus this worker's start
    assert recovered_after < 6.0
    print(f"\nkilled worker's jobs recovered {recovered_after:.2f}s after the kill")


def test_a_worker_started_after_the_crash_recovers_at_once(schema_url, make_queue) -> None:
    _, queue = make_queue()
    job = queue.enqueue(JobSpec("crash.hang"))
    with worker_process(schema_url) as victim:
        wait_for(lambda: queue.get(job.id).status == "running")  # type: ignore[union-attr]
        kill(victim)
    time.sleep(1.6)  # past the lease: the dead worker's heartbeat is stale
    stats = drain(queue, JobKinds.default())
    # recovered before the first fetch, then run in the same burst ("crash.hang" is unknown
    # to this worker, so the attempt fails at once)
    final = queue.get(job.id)
    assert stats.reclaimed == 1
    assert final is not None and final.status == "failed" and final.attempts == 2
    assert "unknown job kind 'crash.hang'" in (final.error or "")


def test_a_worker_outlives_its_database_connections(setup) -> None:
    store, queue = setup
    first = queue.enqueue(JobSpec("noop"))

    async def go() -> WorkerStats:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(JobKinds.default(), concurrency=2, stop=stop))
        try:
            while not done(queue, first.id)():
                await asyncio.sleep(0.01)
            # a server restart, as the worker sees it: every connection it holds is cut
            with store.engine.begin() as conn:
                cut = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'interlink worker' "
                        "AND datname = current_database() AND pid <> pg_backend_pid() "
                        "AND query NOT LIKE '%pg_terminate_backend%'"
                    )
                ).scalar()
            assert cut and cut >= 2
            second = queue.enqueue(JobSpec("noop"))
            deadline = time.monotonic() + 10
            while not done(queue, second.id)():
                assert time.monotonic() < deadline, "the worker did not come back"
                assert not task.done()
                await asyncio.sleep(0.02)
        finally:
            stop.set()
        return await task

    stats = asyncio.run(go())
    assert stats.completed == 2


def test_a_worker_refreshes_the_statistics_of_a_queue_filled_since_its_last_analyze(
    setup,
) -> None:
    """A burst into a fresh queue: until its tables are analyzed again, the planner takes
    them for nearly empty and each claim sorts the whole backlog."""
    store, queue = setup
    tables = ("procrastinate_jobs", "interlink_jobs")
    with store.engine.begin() as conn:
        for table in tables:  # only the worker may analyze them in this test
            conn.execute(sa.text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    later = JobSpec("noop", delay=3600)
    with store.transaction() as conn:
        for _ in range(1500):
            queue.enqueue(later, conn=conn)

    def analyzed() -> dict[str, int]:
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT relname, analyze_count FROM pg_stat_user_tables "
                    "WHERE relid IN (to_regclass('procrastinate_jobs'), "
                    "to_regclass('interlink_jobs'))"
                )
            )
            return {name: int(count) for name, count in rows}

    assert analyzed() == dict.fromkeys(tables, 0)
    asyncio.run(
        work_until(queue, JobKinds.default(), lambda: 0 not in analyzed().values(), timeout=10)
    )
    assert analyzed() == dict.fromkeys(tables, 1)
    with store.engine.connect() as conn:
        estimated = conn.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('interlink_jobs')")
        ).scalar()
    assert estimated == 1500


def test_the_claim_starts_its_interlink_job_by_primary_key_whatever_the_statistics(
    setup,
) -> None:
    """Stale statistics (3,000 jobs the planner has not seen) must not turn the claim's
    UPDATE of interlink_jobs into a scan of every queued job."""
    from interlink.jobs._procrastinate_sql import CLAIM

    store, queue = setup
    with store.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE interlink_jobs"))  # the planner sees an empty table
    with store.transaction() as conn:
        for _ in range(3000):
            queue.enqueue(JobSpec("noop"), conn=conn)
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        plan = "\n".join(row[0] for row in raw.execute("EXPLAIN " + CLAIM, (1, "w")))
    update = plan[plan.index("Update on interlink_jobs") :]
    assert "Index Cond: (id = " in update and "interlink_jobs_pkey" in update, plan
    assert "ix_interlink_jobs_status" not in plan, plan
