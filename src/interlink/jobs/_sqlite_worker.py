"""The SQLite queue's worker loop: claims, runs and acknowledges jobs, renews leases,
reclaims the jobs of lost workers (the design is in `_sqlite_queue.py`'s docstring)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import time
import uuid
from typing import TYPE_CHECKING, Any

from interlink.store import owner_alive

from ._model import Job
from ._queue import JobContext, JobKinds, Outcome, WorkerStats, execute
from ._sqlite_rows import COLUMNS, dumps, job_from_row

if TYPE_CHECKING:
    from ._sqlite_queue import SqliteQueue

__all__ = ["SqliteWorker"]

log = logging.getLogger("interlink.jobs")

_PROGRESS_EVERY = 0.5
_RECLAIM_EVERY = 0.5
_CANCEL_CHECK_EVERY = 0.25
_IDLE_CHECK = 0.02


class SqliteWorker:
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
        self.clock = queue.clock
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
        self.queue.wakers.append(waker)
        db = self.queue.connection()
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
            self.queue.wakers.remove(waker)
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
            job_from_row(row)
            for row in db.execute(
                "UPDATE interlink_jobs SET status = 'running', attempts = attempts + 1, "
                "started_at = ?, lease_until = ?, worker = ?, error = NULL "
                f"WHERE id IN ({marks}) RETURNING {COLUMNS}",
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
            progress = dumps(self.progress.pop(job.id, None))
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
                        dumps(outcome.result),
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
        self.queue.connection().execute(
            "UPDATE interlink_jobs SET progress = ? WHERE id = ? AND worker = ?",
            (dumps(progress), job_id, self.name),
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
