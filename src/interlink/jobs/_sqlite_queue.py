"""`SqliteQueue`: the embedded job queue, in the same SQLite file as everything else.

```
enqueue        INSERT into interlink_jobs (own connection, one commit; or the caller's
               SQLAlchemy connection inside its transaction: the outbox)
work()         one loop per worker process:
  cycle        BEGIN IMMEDIATE
                 acks of the jobs that finished since the last cycle (executemany)
                 claim: ready jobs by priority, id; locks held by running jobs skipped,
                        one job per lock; UPDATE ... status='running', attempts + 1,
                        lease_until = now + lease RETURNING *
               COMMIT                     -> one transaction per batch, not per job
  heartbeat    every lease / 3: renew the leases of this worker's jobs; every quarter second:
               read cancel_requested of its running jobs
  reclaim      every half second: running jobs whose lease ran out, or whose worker
               process on this machine is gone, are queued again (an attempt spent) or,
               at max_attempts, dead-lettered as failed
  idle         PRAGMA data_version every 20 ms (a few microseconds): look for work as
               soon as another connection commits; in-process enqueues wake it at once
```

Claims are atomic because `BEGIN IMMEDIATE` takes SQLite's write lock before reading.
WAL with `synchronous=NORMAL` keeps every acknowledged job (an enqueue that returned, a
completion that was committed) through a killed process; a power loss or OS crash can
lose the last transactions. `jobs.durability: full` sets `synchronous=FULL` on the
queue's connections so a commit is on disk before it returns, at a cost in throughput
(docs/jobs.md, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import orjson
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.store import Store, jobs, owner_alive

from ._model import Job, JobFilter, JobSpec
from ._queue import JobContext, JobKinds, Outcome, WorkerStats, execute

__all__ = ["SqliteQueue"]

log = logging.getLogger("interlink.jobs")

_COLUMNS = (
    "id, kind, args, status, priority, attempts, max_attempts, lock, pipeline, run_at, "
    "created_at, started_at, finished_at, worker, cancel_requested, progress, result, error"
)
_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
_PROGRESS_EVERY = 0.5
_RECLAIM_EVERY = 0.5
_CANCEL_CHECK_EVERY = 0.25
_IDLE_CHECK = 0.02


def _loads(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        kind=row[1],
        args=_loads(row[2]) or {},
        status=row[3],
        priority=row[4],
        attempts=row[5],
        max_attempts=row[6],
        lock=row[7],
        pipeline=row[8],
        run_at=row[9],
        created_at=row[10],
        started_at=row[11],
        finished_at=row[12],
        worker=row[13],
        cancel_requested=bool(row[14]),
        progress=_loads(row[15]),
        result=_loads(row[16]),
        error=row[17],
    )


def _new_job(job_id: int, spec: JobSpec, values: dict[str, Any]) -> Job:
    return Job(
        id=job_id,
        kind=spec.kind,
        args=dict(spec.args),
        status="queued",
        priority=spec.priority,
        attempts=0,
        max_attempts=values["max_attempts"],
        lock=spec.lock,
        pipeline=spec.pipeline,
        run_at=values["run_at"],
        created_at=values["created_at"],
    )


class SqliteQueue:
    """The job queue in the SQLite database of `database:` (the embedded default)."""

    backend: ClassVar[str] = "sqlite"

    def __init__(
        self, store: Store, config: InterlinkConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        url = store.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            raise ValueError("SqliteQueue needs an SQLite database file")
        self.store = store
        self.config = config
        self.settings = config.jobs
        self.path = os.path.expanduser(url.database)
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._wakers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        store.ensure_schema()

    # -- connections ------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            sync = "FULL" if self.settings.durability == "full" else "NORMAL"
            db.execute(f"PRAGMA synchronous={sync}")
            db.execute("PRAGMA busy_timeout=10000")
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def _wake(self) -> None:
        for loop, event in list(self._wakers):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: its worker is gone
                pass

    # -- the Queue protocol -----------------------------------------------------------------

    def enqueue(self, spec: JobSpec, *, conn: sa.Connection | None = None) -> Job:
        now = self._clock()
        values: dict[str, Any] = {
            "kind": spec.kind,
            "args": spec.args,
            "status": "queued",
            "priority": spec.priority,
            "attempts": 0,
            "max_attempts": spec.max_attempts or self.settings.max_attempts,
            "lock": spec.lock,
            "pipeline": spec.pipeline,
            "run_at": now + spec.delay,
            "created_at": now,
            "cancel_requested": False,
            "idempotency_key": spec.idempotency_key,
        }
        if conn is not None:
            return self._enqueue_on(conn, spec, values)
        db = self._db()
        if spec.idempotency_key is not None:
            found = self._by_idempotency_key(db, spec.idempotency_key)
            if found is not None:
                return found
        try:
            cursor = db.execute(
                "INSERT INTO interlink_jobs (kind, args, status, priority, attempts, "
                "max_attempts, lock, pipeline, run_at, created_at, cancel_requested, "
                "idempotency_key) VALUES (?, ?, 'queued', ?, 0, ?, ?, ?, ?, ?, 0, ?)",
                (
                    spec.kind,
                    _dumps(spec.args),
                    spec.priority,
                    values["max_attempts"],
                    spec.lock,
                    spec.pipeline,
                    values["run_at"],
                    now,
                    spec.idempotency_key,
                ),
            )
        except sqlite3.IntegrityError:
            # Another caller inserted the same idempotency key between our look and insert.
            assert spec.idempotency_key is not None
            found = self._by_idempotency_key(db, spec.idempotency_key)
            if found is None:
                raise
            return found
        job_id = cursor.lastrowid
        assert job_id is not None
        self._wake()
        return _new_job(job_id, spec, values)

    def _enqueue_on(self, conn: sa.Connection, spec: JobSpec, values: dict[str, Any]) -> Job:
        if spec.idempotency_key is not None:
            row = conn.execute(
                sa.select(jobs.c.id).where(jobs.c.idempotency_key == spec.idempotency_key)
            ).first()
            if row is not None:
                found = self._get_on(conn, row.id)
                assert found is not None
                return found
        inserted = conn.execute(sa.insert(jobs).values(**values)).inserted_primary_key
        assert inserted is not None
        # The caller commits; a worker finds the job on its next look (data_version).
        return _new_job(int(inserted[0]), spec, values)

    def _get_on(self, conn: sa.Connection, job_id: int) -> Job | None:
        row = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM interlink_jobs WHERE id = :id"), {"id": job_id}
        ).first()
        return None if row is None else _job(tuple(row))

    def _by_idempotency_key(self, db: sqlite3.Connection, key: str) -> Job | None:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM interlink_jobs WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return None if row is None else _job(row)

    def get(self, job_id: int) -> Job | None:
        row = (
            self._db()
            .execute(f"SELECT {_COLUMNS} FROM interlink_jobs WHERE id = ?", (job_id,))
            .fetchone()
        )
        return None if row is None else _job(row)

    def list(self, query: JobFilter | None = None) -> list[Job]:
        query = query or JobFilter()
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("status", query.status),
            ("pipeline", query.pipeline),
            ("kind", query.kind),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.before is not None:
            where.append("id < ?")
            params.append(query.before)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = (
            self._db()
            .execute(
                f"SELECT {_COLUMNS} FROM interlink_jobs {clause} ORDER BY id DESC LIMIT ?",
                (*params, query.limit),
            )
            .fetchall()
        )
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(_STATUSES, 0)
        for status, count in self._db().execute(
            "SELECT status, count(*) FROM interlink_jobs GROUP BY status"
        ):
            found[status] = count
        return found

    def cancel(self, job_id: int) -> Job | None:
        db = self._db()
        now = self._clock()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "UPDATE interlink_jobs SET status = 'cancelled', finished_at = ?, "
                "error = 'cancelled before it ran' WHERE id = ? AND status = 'queued'",
                (now, job_id),
            )
            db.execute(
                "UPDATE interlink_jobs SET cancel_requested = 1 "
                "WHERE id = ? AND status = 'running'",
                (job_id,),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return self.get(job_id)

    # -- the worker -------------------------------------------------------------------------

    async def work(
        self,
        kinds: JobKinds,
        *,
        concurrency: int = 1,
        stop: asyncio.Event | None = None,
        burst: bool = False,
    ) -> WorkerStats:
        return await _Worker(self, kinds, concurrency, stop or asyncio.Event(), burst).run()


class _Worker:
    """One worker loop: claims, runs and acknowledges jobs, renews leases, reclaims."""

    def __init__(
        self,
        queue: SqliteQueue,
        kinds: JobKinds,
        concurrency: int,
        stop: asyncio.Event,
        burst: bool,
    ) -> None:
        self.queue = queue
        self.kinds = kinds
        self.concurrency = max(1, concurrency)
        self.stop = stop
        self.burst = burst
        self.clock = queue._clock
        self.settings = queue.settings
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self.running: dict[int, asyncio.Task[None]] = {}
        self.jobs: dict[int, Job] = {}
        self.acks: list[tuple[Job, Outcome]] = []
        self.cancel_requested: set[int] = set()
        self.progress: dict[int, dict[str, Any]] = {}
        self.progress_written: dict[int, float] = {}
        self.wake = asyncio.Event()
        self.finished = asyncio.Event()
        self.last_reclaim = 0.0
        self.last_cancel_check = 0.0
        self.last_renew = 0.0
        self.data_version = -1
        self.leaving = False

    async def run(self) -> WorkerStats:
        loop = asyncio.get_running_loop()
        waker = (loop, self.wake)
        self.queue._wakers.append(waker)
        db = self.queue._db()
        log.info("worker %s started (concurrency %s)", self.name, self.concurrency)
        try:
            while True:
                self._housekeeping(db)
                free = self.concurrency - len(self.running)
                claimed = self._cycle(db, claim=not self._stopping())
                for job in claimed:
                    self._start(job)
                if self._stopping() and not self.running:
                    break
                if self.burst and not claimed and not self.running and not self.acks:
                    break
                if claimed and len(claimed) == free:
                    await asyncio.sleep(0)  # let them start, then claim again at once
                    continue
                await self._wait(db)
            self._cycle(db, claim=False)
        finally:
            await self._hand_back(db)
            self.queue._wakers.remove(waker)
        return self.stats

    def _stopping(self) -> bool:
        return self.leaving or self.stop.is_set()

    async def _wait(self, db: sqlite3.Connection) -> None:
        """Until a job finishes, work may be ready, or it is time for housekeeping."""
        if self.acks:
            return
        if self.running and (self._stopping() or len(self.running) >= self.concurrency):
            self.finished.clear()
            await self._sleep_until(self.finished, max(self._housekeeping_due(), 0.005))
            return
        deadline = time.monotonic() + self.settings.poll_interval
        while True:
            if self.acks or self._stopping():
                return
            version = db.execute("PRAGMA data_version").fetchone()[0]
            if version != self.data_version:
                self.data_version = version
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.wake.clear()
            self.finished.clear()
            woke = await self._sleep_until(self.wake, min(_IDLE_CHECK, remaining), also=True)
            if woke:
                return

    async def _sleep_until(
        self, event: asyncio.Event, timeout: float, *, also: bool = False
    ) -> bool:
        waiters = [asyncio.ensure_future(event.wait())]
        if also:
            waiters.append(asyncio.ensure_future(self.finished.wait()))
            waiters.append(asyncio.ensure_future(self.stop.wait()))
        done, pending = await asyncio.wait(
            waiters, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in pending:
            waiter.cancel()
        return bool(done)

    def _housekeeping_due(self) -> float:
        now = self.clock()
        renew_every = self.settings.lease / 3
        return max(
            0.0,
            min(
                self.last_reclaim + _RECLAIM_EVERY,
                self.last_cancel_check + _CANCEL_CHECK_EVERY,
                self.last_renew + renew_every,
            )
            - now,
        )

    # -- one transaction: acknowledge what finished, claim what is ready ---------------------

    def _cycle(self, db: sqlite3.Connection, *, claim: bool) -> list[Job]:
        acks, self.acks = self.acks, []
        free = self.concurrency - len(self.running) if claim else 0
        if not acks and free <= 0:
            return []
        now = self.clock()
        db.execute("BEGIN IMMEDIATE")
        try:
            if acks:
                self._write_acks(db, acks, now)
            claimed = self._claim(db, free, now) if free > 0 else []
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self.acks = acks + self.acks
            raise
        for job, outcome in acks:
            self._count(job, outcome)
        return claimed

    def _claim(self, db: sqlite3.Connection, free: int, now: float) -> list[Job]:
        held = [
            row[0]
            for row in db.execute(
                "SELECT DISTINCT lock FROM interlink_jobs "
                "WHERE status = 'running' AND lock IS NOT NULL"
            )
        ]
        excluded = ""
        if held:
            excluded = f" AND (lock IS NULL OR lock NOT IN ({', '.join('?' * len(held))}))"
        rows = db.execute(
            "SELECT id, lock FROM interlink_jobs INDEXED BY ix_interlink_jobs_ready "
            f"WHERE status = 'queued' AND run_at <= ?{excluded} "
            "ORDER BY priority DESC, id LIMIT ?",
            (now, *held, free * 4),
        ).fetchall()
        chosen: list[int] = []
        taken: set[str] = set()
        for job_id, lock in rows:
            if lock is not None:
                if lock in taken:
                    continue
                taken.add(lock)
            chosen.append(job_id)
            if len(chosen) == free:
                break
        if not chosen:
            return []
        marks = ", ".join("?" * len(chosen))
        claimed = [
            _job(row)
            for row in db.execute(
                "UPDATE interlink_jobs SET status = 'running', attempts = attempts + 1, "
                "started_at = ?, lease_until = ?, worker = ?, error = NULL "
                f"WHERE id IN ({marks}) RETURNING {_COLUMNS}",
                (now, now + self.settings.lease, self.name, *chosen),
            )
        ]
        claimed.sort(key=lambda job: (-job.priority, job.id))
        return claimed

    def _write_acks(
        self, db: sqlite3.Connection, acks: list[tuple[Job, Outcome]], now: float
    ) -> None:
        done: list[tuple[Any, ...]] = []
        again: list[tuple[Any, ...]] = []
        handed_back: list[tuple[Any, ...]] = []
        for job, outcome in acks:
            progress = _dumps(self.progress.pop(job.id, None))
            self.progress_written.pop(job.id, None)
            if outcome.status == "retry":
                again.append((now + outcome.delay, outcome.error, progress, job.id, self.name))
            elif outcome.status == "cancelled" and job.id not in self.cancel_requested:
                # Stopped because this worker is shutting down: the attempt is given back.
                handed_back.append((progress, job.id, self.name))
            else:
                status = "cancelled" if outcome.status == "cancelled" else outcome.status
                done.append(
                    (
                        status,
                        _dumps(outcome.result),
                        outcome.error,
                        now,
                        progress,
                        job.id,
                        self.name,
                    )
                )
            self.cancel_requested.discard(job.id)
        # `worker = ?` guards against a worker whose lease ran out while it worked: the job
        # is someone else's now, and its late answer changes nothing.
        if done:
            db.executemany(
                "UPDATE interlink_jobs SET status = ?, result = ?, error = ?, finished_at = ?, "
                "progress = coalesce(?, progress), lease_until = NULL "
                "WHERE id = ? AND worker = ? AND status = 'running'",
                done,
            )
        if again:
            db.executemany(
                "UPDATE interlink_jobs SET status = 'queued', run_at = ?, error = ?, "
                "progress = coalesce(?, progress), lease_until = NULL, worker = NULL "
                "WHERE id = ? AND worker = ? AND status = 'running'",
                again,
            )
        if handed_back:
            db.executemany(
                "UPDATE interlink_jobs SET status = 'queued', attempts = attempts - 1, "
                "progress = coalesce(?, progress), lease_until = NULL, worker = NULL "
                "WHERE id = ? AND worker = ? AND status = 'running'",
                handed_back,
            )

    def _count(self, job: Job, outcome: Outcome) -> None:
        stats = self.stats
        if outcome.status == "completed":
            stats.completed += 1
            stats.by_kind[job.kind] = stats.by_kind.get(job.kind, 0) + 1
        elif outcome.status == "retry":
            stats.retried += 1
        elif outcome.status == "failed":
            stats.failed += 1
        else:
            stats.cancelled += 1

    # -- running one job --------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        self.jobs[job.id] = job
        task = asyncio.ensure_future(self._execute(job))
        self.running[job.id] = task

    async def _execute(self, job: Job) -> None:
        context = JobContext(
            job,
            self.queue.config,
            should_stop=lambda: job.id in self.cancel_requested or self._stopping(),
            report=lambda progress: self._report(job.id, progress),
            services={"store": self.queue.store, "queue": self.queue},
        )
        try:
            outcome = await execute(job, self.kinds, context, self.settings)
        except asyncio.CancelledError:
            outcome = Outcome("cancelled", error="the worker stopped")
        except BaseException as exc:  # execute() turns job errors into outcomes already
            log.exception("job %s: the worker failed to run it", job.id)
            outcome = Outcome("retry", error=f"{type(exc).__name__}: {exc}", delay=1.0)
        self.running.pop(job.id, None)
        self.jobs.pop(job.id, None)
        self.acks.append((job, outcome))
        self.finished.set()

    def _report(self, job_id: int, progress: dict[str, Any]) -> None:
        self.progress[job_id] = progress
        now = time.monotonic()
        if now - self.progress_written.get(job_id, 0.0) < _PROGRESS_EVERY:
            return
        self.progress_written[job_id] = now
        self.queue._db().execute(
            "UPDATE interlink_jobs SET progress = ? WHERE id = ? AND worker = ?",
            (_dumps(progress), job_id, self.name),
        )

    # -- leases, cancellations, reclaims ----------------------------------------------------

    def _housekeeping(self, db: sqlite3.Connection) -> None:
        now = self.clock()
        if self.running and now - self.last_renew >= self.settings.lease / 3:
            self.last_renew = now
            db.execute(
                "UPDATE interlink_jobs SET lease_until = ? WHERE worker = ? AND status = 'running'",
                (now + self.settings.lease, self.name),
            )
        if self.running and now - self.last_cancel_check >= _CANCEL_CHECK_EVERY:
            self.last_cancel_check = now
            for (job_id,) in db.execute(
                "SELECT id FROM interlink_jobs "
                "WHERE worker = ? AND status = 'running' AND cancel_requested",
                (self.name,),
            ):
                self.cancel_requested.add(job_id)
        if now - self.last_reclaim >= _RECLAIM_EVERY:
            self.last_reclaim = now
            self._reclaim(db, now)

    def _reclaim(self, db: sqlite3.Connection, now: float) -> None:
        """Queue again (or dead-letter) running jobs whose worker is gone."""
        stale = [
            (job_id, attempts, max_attempts)
            for job_id, worker, lease_until, attempts, max_attempts in db.execute(
                "SELECT id, worker, lease_until, attempts, max_attempts FROM interlink_jobs "
                "INDEXED BY ix_interlink_jobs_running WHERE status = 'running'"
            )
            if worker != self.name and (lease_until < now or not owner_alive(worker))
        ]
        if not stale:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            for job_id, attempts, max_attempts in stale:
                lost = "its worker was lost (killed or its lease ran out)"
                if attempts >= max_attempts:
                    db.execute(
                        "UPDATE interlink_jobs SET status = 'failed', finished_at = ?, "
                        "lease_until = NULL, error = ? WHERE id = ? AND status = 'running'",
                        (now, f"{lost}; gave up after {attempts} attempts", job_id),
                    )
                else:
                    db.execute(
                        "UPDATE interlink_jobs SET status = 'queued', run_at = ?, "
                        "lease_until = NULL, worker = NULL, error = ? "
                        "WHERE id = ? AND status = 'running'",
                        (now, f"{lost} during attempt {attempts}", job_id),
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.stats.reclaimed += len(stale)
        log.warning("reclaimed %s job(s) from lost workers", len(stale))

    async def _hand_back(self, db: sqlite3.Connection) -> None:
        """On the way out: let running jobs stop at their next batch, then acknowledge."""
        if self.running:
            self.leaving = True
            await asyncio.wait(list(self.running.values()), timeout=self.settings.lease / 2)
            for task in self.running.values():
                task.cancel()
            if self.running:
                await asyncio.wait(list(self.running.values()), timeout=5)
        if self.acks:
            self._cycle(db, claim=False)
