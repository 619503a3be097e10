"""The SQLite queue's worker loop: claims, runs and acknowledges jobs, renews leases,
reclaims the jobs of lost workers (the design is in `_sqlite_queue.py`'s docstring).

Every write a worker makes about a job it runs is fenced by its lease: `WHERE id = ? AND
worker = ? AND attempts = ?` (a claim counts one more attempt, so the pair names one
claim), and each write checks that it changed its row. A renewal or a progress report
that finds the row no longer this attempt's means the lease was lost (it ran out and
another worker took the job): the attempt is told to stop (`should_stop()`) and nothing it
still answers is written. A reclaim is a compare-and-set on the worker and lease it read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interlink.store import owner_may_be_alive

from ._job_log import job_finished, job_started
from ._model import Job
from ._queue import JobContext, JobKinds, Outcome, WorkerStats, execute, holder_of, warn_lease_lost
from ._sqlite_rows import COLUMNS, dumps, job_from_row

if TYPE_CHECKING:
    from ._sqlite_queue import SqliteQueue

__all__ = ["SqliteWorker"]

log = logging.getLogger("interlink.jobs")

_PROGRESS_EVERY = 0.5
_RECLAIM_EVERY = 0.5
_CANCEL_CHECK_EVERY = 0.25
_IDLE_CHECK = 0.02
_OUTAGE_WAIT = 0.05
_OUTAGE_WAIT_MAX = 2.0

# The acknowledgements: each names the attempt it ends (see the module docstring).
_MINE = "WHERE id = ? AND worker = ? AND attempts = ? AND status = 'running'"
_DONE = (
    "UPDATE interlink_jobs SET status = ?, result = ?, error = ?, finished_at = ?, "
    f"progress = coalesce(?, progress), lease_until = NULL {_MINE} RETURNING status"
)
# An attempt that goes back to the queue (a retry, a hand-back) ends the job `cancelled`
# instead when a cancel was asked for meanwhile, seen by this worker or not yet: a
# cancelled job never runs again. Both return the status they wrote.
_AGAIN = (
    "UPDATE interlink_jobs SET "
    "status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END, "
    "run_at = CASE WHEN cancel_requested THEN run_at ELSE ? END, "
    "finished_at = CASE WHEN cancel_requested THEN ? END, "
    "error = CASE WHEN cancel_requested THEN 'cancelled while running; its attempt ended in ' "
    "|| ? ELSE ? END, "
    "attempts = attempts - CASE WHEN cancel_requested THEN 0 ELSE ? END, "
    "worker = CASE WHEN cancel_requested THEN worker END, "
    f"progress = coalesce(?, progress), lease_until = NULL {_MINE} RETURNING status"
)
_HANDED_BACK = (
    "UPDATE interlink_jobs SET "
    "status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END, "
    "finished_at = CASE WHEN cancel_requested THEN ? END, "
    "error = CASE WHEN cancel_requested THEN 'cancelled while running' ELSE error END, "
    "attempts = attempts - CASE WHEN cancel_requested THEN 0 ELSE 1 END, "
    "worker = CASE WHEN cancel_requested THEN worker END, "
    f"progress = coalesce(?, progress), lease_until = NULL {_MINE} RETURNING status"
)
# A reclaim: the row is still as it was read (see SqliteWorker._reclaim).
_AS_READ = (
    "WHERE id = ? AND status = 'running' AND worker IS ? AND attempts = ? AND lease_until IS ?"
)


@dataclass(eq=False)
class _Attempt:
    """One claim of a job by this worker, while it runs and until it is acknowledged."""

    job: Job
    lost: bool = False
    """The lease was lost: the attempt is told to stop and its answer is not written."""
    cancel_requested: bool = False
    progress: dict[str, Any] | None = None
    """The last progress reported (saved at most every half second, and with the answer)."""
    progress_written: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


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
        self.running: dict[int, _Attempt] = {}
        """By job id: the attempts this worker holds the lease of."""
        self.stale: set[_Attempt] = set()
        """Attempts whose lease was lost, still running until they see `should_stop()`."""
        self.acks: list[tuple[_Attempt, Outcome]] = []
        self.wake = asyncio.Event()
        self.finished = asyncio.Event()
        self.last_reclaim = 0.0
        self.last_cancel_check = 0.0
        self.last_renew = 0.0
        self.data_version = -1
        self.leaving = False
        self.outage = 0.0
        """Seconds of the last wait for a database that could not be written (0: none)."""

    async def run(self) -> WorkerStats:
        loop = asyncio.get_running_loop()
        waker = (loop, self.wake)
        self.queue.wakers.append(waker)
        db = self.queue.connection()
        log.info("worker %s started (concurrency %s)", self.name, self.concurrency)
        try:
            while True:
                try:
                    self._housekeeping(db)
                    free = self.concurrency - self._busy()
                    claimed = self._cycle(db, claim=not self._stopping())
                except sqlite3.OperationalError as exc:
                    # Locked past the busy timeout by another process, a full disk...: the
                    # jobs in hand keep running, their acknowledgements wait; try again.
                    if self._stopping() and not self._busy():
                        raise
                    await self._unreachable(exc)
                    continue
                self.outage = 0.0
                for job in claimed:
                    self._start(job)
                if self._stopping() and not self._busy():
                    break
                if self.burst and not claimed and not self._busy() and not self.acks:
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

    async def _unreachable(self, exc: sqlite3.OperationalError) -> None:
        """Wait before trying the database again, a little longer each time (at most
        `_OUTAGE_WAIT_MAX` seconds, and a third of the lease: renewals must not stop)."""
        cap = min(_OUTAGE_WAIT_MAX, self.settings.lease / 3)
        self.outage = min(cap, max(self.outage * 2, _OUTAGE_WAIT))
        log.warning(
            "worker %s: the job database %s cannot be written (%s); %s finished job(s) wait "
            "to be recorded, trying again in %.2fs",
            self.name,
            self.queue.path,
            exc,
            len(self.acks),
            self.outage,
        )
        await self._sleep_until(self.stop, self.outage)

    def _stopping(self) -> bool:
        return self.leaving or self.stop.is_set()

    def _busy(self) -> int:
        """Attempts running now, those whose lease was lost included (until they stop)."""
        return len(self.running) + len(self.stale)

    async def _wait(self, db: sqlite3.Connection) -> None:
        """Until a job finishes, work may be ready, or it is time for housekeeping."""
        if self.acks:
            return
        busy = self._busy()
        if busy and (self._stopping() or busy >= self.concurrency):
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
        free = self.concurrency - self._busy() if claim else 0
        if not acks and free <= 0:
            return []
        now = self.clock()
        try:
            # BEGIN inside: a database it cannot lock must not lose the acknowledgements.
            db.execute("BEGIN IMMEDIATE")
            written = self._write_acks(db, acks, now) if acks else []
            claimed = self._claim(db, free, now) if free > 0 else []
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            self.acks = acks + self.acks
            raise
        self.stats.lost += len(acks) - len(written)
        for attempt, outcome in written:
            self.stats.count(attempt.job.kind, outcome)
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
        self, db: sqlite3.Connection, acks: list[tuple[_Attempt, Outcome]], now: float
    ) -> list[tuple[_Attempt, Outcome]]:
        """Write how each attempt ended; those that changed their row (the others had
        lost their lease, and their answers are dropped)."""
        written: list[tuple[_Attempt, Outcome]] = []
        for attempt, outcome in acks:
            job = attempt.job
            if attempt.lost:  # told already, when the loss was found
                continue
            progress = dumps(attempt.progress)
            mine = (job.id, self.name, job.attempts)
            if outcome.status == "retry":
                given_back = 0 if outcome.spent else 1
                error = outcome.error or "an error"
                params: tuple[Any, ...] = (
                    now + outcome.delay,
                    now,
                    error,
                    outcome.error,
                    given_back,
                    progress,
                )
                row = db.execute(_AGAIN, (*params, *mine)).fetchone()
            elif outcome.status == "cancelled" and not attempt.cancel_requested:
                # Stopped because this worker is shutting down: the attempt is given back
                # (unless a cancel was asked for meanwhile).
                row = db.execute(_HANDED_BACK, (now, progress, *mine)).fetchone()
            else:
                result = dumps(outcome.result)
                params = (outcome.status, result, outcome.error, now, progress)
                row = db.execute(_DONE, (*params, *mine)).fetchone()
            if row is None:
                self._lose(attempt, self._holder(db, job.id))
            elif row[0] == "cancelled" and outcome.status != "cancelled":
                written.append((attempt, Outcome("cancelled", error=outcome.error)))
            else:
                written.append((attempt, outcome))
        return written

    # -- running one job --------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        earlier = self.running.get(job.id)
        if earlier is not None:
            # Queued again (its lease ran out) while this worker still ran it, and claimed
            # again by this worker: the earlier attempt is lost like any other.
            self._lose(earlier, f"{self.name} (which claimed it again)")
        attempt = _Attempt(job)
        self.running[job.id] = attempt
        attempt.task = asyncio.ensure_future(self._execute(attempt))

    async def _execute(self, attempt: _Attempt) -> None:
        job = attempt.job
        context = JobContext(
            job,
            self.queue.config,
            should_stop=lambda: attempt.lost or attempt.cancel_requested or self._stopping(),
            report=lambda progress: self._report(attempt, progress),
            services={"store": self.queue.store, "queue": self.queue},
        )
        job_started(job)
        began = time.monotonic()
        try:
            outcome = await execute(job, self.kinds, context, self.settings)
        except asyncio.CancelledError:
            outcome = Outcome("cancelled", error="the worker stopped")
        except BaseException as exc:  # execute() turns job errors into outcomes already
            log.exception("job %s: the worker failed to run it", job.id)
            outcome = Outcome("retry", error=f"{type(exc).__name__}: {exc}", delay=1.0)
        job_finished(job, outcome, time.monotonic() - began)
        if self.running.get(job.id) is attempt:
            del self.running[job.id]
        self.stale.discard(attempt)
        self.acks.append((attempt, outcome))
        self.finished.set()

    def _report(self, attempt: _Attempt, progress: dict[str, Any]) -> None:
        if attempt.lost:
            return
        attempt.progress = progress
        now = time.monotonic()
        if now - attempt.progress_written < _PROGRESS_EVERY:
            return
        attempt.progress_written = now
        db = self.queue.connection()
        job = attempt.job
        try:
            saved = db.execute(
                f"UPDATE interlink_jobs SET progress = ? {_MINE}",
                (dumps(progress), job.id, self.name, job.attempts),
            ).rowcount
        except sqlite3.OperationalError as exc:
            # Progress is best effort (the acknowledgement writes the last one): a database
            # locked past the busy timeout must not fail the job.
            log.warning("job %s: progress not saved to %s: %s", job.id, self.queue.path, exc)
            attempt.progress_written = 0.0
            return
        if saved != 1:
            self._lose(attempt, self._holder(db, job.id))

    # -- leases, cancellations, reclaims ----------------------------------------------------

    def _lose(self, attempt: _Attempt, holder: str) -> None:
        """The lease of `attempt` is lost: tell it to stop, and never write its answer."""
        if attempt.lost:
            return
        attempt.lost = True
        if self.running.get(attempt.job.id) is attempt:
            del self.running[attempt.job.id]
            self.stale.add(attempt)
        warn_lease_lost(attempt.job.id, holder)

    def _holder(self, db: sqlite3.Connection, job_id: int) -> str:
        row = db.execute(
            "SELECT worker, status FROM interlink_jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return holder_of(*row) if row is not None else holder_of(None, None)

    def _housekeeping(self, db: sqlite3.Connection) -> None:
        now = self.clock()
        if self.running and now - self.last_renew >= self.settings.lease / 3:
            self._renew(db, now)
            self.last_renew = now  # after it: a renewal that failed is tried at once again
        if self.running and now - self.last_cancel_check >= _CANCEL_CHECK_EVERY:
            self.last_cancel_check = now
            for job_id, attempts in db.execute(
                "SELECT id, attempts FROM interlink_jobs "
                "WHERE worker = ? AND status = 'running' AND cancel_requested",
                (self.name,),
            ):
                attempt = self.running.get(job_id)
                if attempt is not None and attempt.job.attempts == attempts:
                    attempt.cancel_requested = True
        if now - self.last_reclaim >= _RECLAIM_EVERY:
            self.last_reclaim = now
            self._reclaim(db, now)

    def _renew(self, db: sqlite3.Connection, now: float) -> None:
        """Extend the leases of this worker's running jobs; an attempt whose row was not
        renewed (another worker took the job over) has lost its lease."""
        renewed = set(
            db.execute(
                "UPDATE interlink_jobs SET lease_until = ? "
                "WHERE worker = ? AND status = 'running' RETURNING id, attempts",
                (now + self.settings.lease, self.name),
            ).fetchall()
        )
        for attempt in list(self.running.values()):
            if (attempt.job.id, attempt.job.attempts) not in renewed:
                self._lose(attempt, self._holder(db, attempt.job.id))

    def _reclaim(self, db: sqlite3.Connection, now: float) -> None:
        """Queue again (or dead-letter) running jobs whose worker is gone.

        Each is a compare-and-set on the worker, attempt and lease read here: a worker that
        renewed its lease in the meantime keeps its job."""
        expired = [
            (job_id, worker, lease_until, attempts, max_attempts, cancel_requested)
            for job_id, worker, lease_until, attempts, max_attempts, cancel_requested in db.execute(
                "SELECT id, worker, lease_until, attempts, max_attempts, cancel_requested "
                "FROM interlink_jobs INDEXED BY ix_interlink_jobs_running "
                "WHERE status = 'running'"
            )
            if worker != self.name
            and (lease_until is None or lease_until < now or not owner_may_be_alive(worker))
        ]
        if not expired:
            return
        reclaimed = 0
        lost = "its worker was lost (killed or its lease ran out)"
        db.execute("BEGIN IMMEDIATE")
        try:
            for job_id, worker, lease_until, attempts, max_attempts, cancelling in expired:
                read = (job_id, worker, attempts, lease_until)
                if cancelling:  # a cancelled job never runs again
                    cursor = db.execute(
                        "UPDATE interlink_jobs SET status = 'cancelled', finished_at = ?, "
                        f"lease_until = NULL, error = ? {_AS_READ}",
                        (now, f"{lost} while it was being cancelled", *read),
                    )
                elif attempts >= max_attempts:
                    cursor = db.execute(
                        "UPDATE interlink_jobs SET status = 'failed', finished_at = ?, "
                        f"lease_until = NULL, error = ? {_AS_READ}",
                        (now, f"{lost}; gave up after {attempts} attempts", *read),
                    )
                else:
                    cursor = db.execute(
                        "UPDATE interlink_jobs SET status = 'queued', run_at = ?, "
                        f"lease_until = NULL, worker = NULL, error = ? {_AS_READ}",
                        (now, f"{lost} during attempt {attempts}", *read),
                    )
                reclaimed += cursor.rowcount
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        if reclaimed:
            self.stats.reclaimed += reclaimed
            log.warning("reclaimed %s job(s) from lost workers", reclaimed)

    async def _hand_back(self, db: sqlite3.Connection) -> None:
        """On the way out: let running jobs stop at their next batch, then acknowledge."""
        tasks = [a.task for a in (*self.running.values(), *self.stale) if a.task is not None]
        if tasks:
            self.leaving = True
            await asyncio.wait(tasks, timeout=self.settings.lease / 2)
            for task in tasks:
                task.cancel()
            pending = [task for task in tasks if not task.done()]
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self.acks:
            self._cycle(db, claim=False)


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already (it does on some errors,
    and a ROLLBACK then would hide the error that caused it)."""
    if db.in_transaction:
        db.execute("ROLLBACK")
