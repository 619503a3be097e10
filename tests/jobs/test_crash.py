"""The crash battery (RELIABILITY.md J1), on both backends: workers SIGKILLed mid-job lose
no job, never make an effect twice, and contain poison jobs.

1,000 effect jobs (a tenth of them sharing five locks) and 5 poison jobs; two worker
processes (tests/jobs/crash_worker.py); one of them is SIGKILLed while it has a job in
hand, several times, and started again each time. At the end every good job completed
once in effect, the poison jobs are dead-lettered after their attempts, executions of one
job never overlapped, and neither did executions of jobs sharing a lock.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.jobs import JobSpec, open_queue
from interlink.store import Store
from tests.jobs import crash_worker
from tests.jobs.procrastinate_schema import fresh_schema

GOOD = 1_000
POISON = 5
POISON_ATTEMPTS = 3
LOCKS = 5
KILLS = 4
LEASE = 1.5
SLEEP = 0.01  # each effect job's work, in seconds
CONCURRENCY = 2
WORKER = Path(__file__).with_name("crash_worker.py")
OPEN = "SELECT count(*) FROM crash_executions WHERE pid = :pid AND ended_at IS NULL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crash.db'}"
        return
    request.applymarker(pytest.mark.postgres)
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_crash") as url:
        yield url


def start(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            url,
            "--concurrency",
            str(CONCURRENCY),
            "--lease",
            str(LEASE),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def enqueue_all(store: Store, url: str) -> tuple[list[int], list[int]]:
    config = crash_worker.settings(url, lease=LEASE)
    queue = open_queue(config, store)
    good: list[int] = []
    poison: list[int] = []
    # through the outbox path: every job in one transaction of the caller's
    with store.transaction() as conn:
        for n in range(GOOD):
            lock = f"crash:{n // 10 % LOCKS}" if n % 10 == 0 else None
            spec = JobSpec("crash.effect", {"n": n, "sleep": SLEEP}, lock=lock)
            good.append(queue.enqueue(spec, conn=conn).id)
            if n % (GOOD // POISON) == GOOD // POISON // 2:
                spec = JobSpec("crash.poison", max_attempts=POISON_ATTEMPTS)
                poison.append(queue.enqueue(spec, conn=conn).id)
    queue.close()
    return good, poison


def test_killed_workers_lose_no_job_and_make_no_effect_twice(database_url: str) -> None:
    backend = database_url.split(":", 1)[0]
    store = Store.open(database_url)
    crash_worker.create_tables(store.engine)
    good, poison = enqueue_all(store, database_url)
    assert len(poison) == POISON
    engine = store.engine
    kill_times: dict[int, float] = {}
    landed: list[int] = []
    started = time.monotonic()
    survivor = start(database_url)
    victim = start(database_url)
    workers = [survivor, victim]
    try:
        # Kill the victim when the run passes each threshold and it has an effect job in
        # hand (its execution row is open), then start it again at once. A kill that
        # came a moment too late (the job had just finished) is tried again.
        thresholds = [int(GOOD * (0.1 + 0.15 * k)) for k in range(KILLS)]
        deadline = time.monotonic() + 50
        while len(landed) < KILLS and time.monotonic() < deadline:
            effects = scalar(engine, "SELECT count(*) FROM crash_effects")
            if effects >= GOOD:
                break
            in_hand = scalar(engine, OPEN, pid=victim.pid)
            if effects >= thresholds[len(landed)] and in_hand:
                kill_times[victim.pid] = time.time()
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                if scalar(engine, OPEN, pid=victim.pid):
                    landed.append(victim.pid)
                victim = start(database_url)
                workers.append(victim)
            time.sleep(0.02)
        last_kill = time.monotonic()
        # drain: every job reaches a final state
        total = GOOD + POISON
        while time.monotonic() < deadline:
            finished = scalar(
                engine,
                "SELECT count(*) FROM interlink_jobs "
                "WHERE status IN ('completed', 'failed', 'cancelled')",
            )
            if finished == total:
                break
            time.sleep(0.05)
        drained = time.monotonic()
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    with engine.connect() as conn:
        statuses = {
            row.id: row
            for row in conn.execute(
                sa.text("SELECT id, status, attempts, error, lock FROM interlink_jobs")
            )
        }
        effects = [row.job_id for row in conn.execute(sa.text("SELECT job_id FROM crash_effects"))]
        executions = conn.execute(
            sa.text("SELECT job_id, pid, started_at, ended_at, replay FROM crash_executions")
        ).all()

    kills = len(kill_times)
    interrupted = [e for e in executions if e.ended_at is None]
    reexecutions = len(executions) - len({e.job_id for e in executions})
    replays = sum(1 for e in executions if e.replay)
    elapsed = drained - started
    # how long an interrupted job waited, from its worker's kill to its next execution
    recoveries = [
        min(
            later.started_at
            for later in executions
            if later.job_id == e.job_id and later.started_at > e.started_at
        )
        - kill_times[e.pid]
        for e in interrupted
    ]
    print(
        f"\n[{backend}] kills={kills} (mid-job {len(landed)}) interrupted={len(interrupted)} "
        f"re-executions={reexecutions} replays={replays} executions={len(executions)} "
        f"effects={len(effects)} recovery max={max(recoveries, default=0):.2f}s "
        f"drain after last kill={drained - last_kill:.2f}s "
        f"total={elapsed:.2f}s ({(GOOD + POISON) / elapsed:.0f} jobs/s)"
    )

    # the faults happened: not a vacuous pass
    assert len(landed) >= 3
    assert len(interrupted) >= len(landed)
    assert all(e.pid in kill_times for e in interrupted), "an execution ended without a kill"
    assert reexecutions >= len(interrupted) >= 1
    # a stalled job runs again soon after its lease runs out (reclaim checks come every
    # lease/3 on PostgreSQL, every 0.5 s on SQLite)
    assert max(recoveries) < 2 * LEASE + 1.0
    # no job lost, every good job completed, every effect exactly once
    assert len(statuses) == GOOD + POISON
    assert all(statuses[job_id].status == "completed" for job_id in good)
    assert sorted(effects) == sorted(good), "an effect is missing or was made twice"
    assert len(executions) >= len(effects)
    # poison jobs: dead-lettered after their attempts, and they blocked nothing
    for job_id in poison:
        row = statuses[job_id]
        assert row.status == "failed" and row.attempts == POISON_ATTEMPTS
        assert "poison" in row.error or "worker was lost" in row.error

    # no two executions of one job, nor of two jobs sharing a lock, ever overlapped (a
    # killed execution lasts until its worker's kill)
    def spans(rows: list[Any]) -> list[tuple[float, float]]:
        return sorted((e.started_at, e.ended_at or kill_times[e.pid]) for e in rows)

    by_job: dict[int, list[Any]] = defaultdict(list)
    by_lock: dict[str, list[Any]] = defaultdict(list)
    for execution in executions:
        by_job[execution.job_id].append(execution)
        lock = statuses[execution.job_id].lock
        if lock is not None:
            by_lock[lock].append(execution)
    assert len(by_lock) == LOCKS
    for group in [*by_job.values(), *by_lock.values()]:
        ordered = spans(group)
        assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:], strict=False)), ordered
    store.close()
