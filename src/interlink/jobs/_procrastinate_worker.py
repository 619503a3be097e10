"""What runs inside Procrastinate's worker for the PostgreSQL queue: the claim, one attempt,
its acknowledgement, cancel checks and progress, and the recovery of stalled jobs.

`ProcrastinateQueue.work` (in `_procrastinate.py`) builds one `Runner` per call, installs
`InterlinkJobManager` as the app's job manager and registers `run_job` as the task, with
`HandBack` as its retry strategy. The statements come from `_procrastinate_sql.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

import procrastinate
import psycopg
from procrastinate import exceptions as pexc, jobs as pjobs, retry as pretry
from procrastinate.job_context import AbortReason
from procrastinate.manager import JobManager
from psycopg import sql
from psycopg.rows import DictRow, tuple_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool

from ._job_log import job_finished, job_started
from ._model import Job
from ._procrastinate_sql import (
    ACK_FINISH,
    ACK_RETRY,
    ASK_CANCEL,
    CLAIM,
    COMPLETED,
    FAILED,
    GIVE_UP,
    HELD,
    LOST,
    QUEUE_NAME,
    RECOVERY_LOCK,
    RETRY,
    SAVE_PROGRESS,
    STALE_STATISTICS,
    START,
    STATE,
    STATISTICS_LOCK,
    STOPPED,
    TASK_NAME,
    claimed_from_row,
    job_from_row,
)
from ._queue import JobContext, JobKinds, Outcome, WorkerStats, execute, holder_of, warn_lease_lost

if TYPE_CHECKING:
    from ._procrastinate import ProcrastinateQueue

__all__ = ["HandBack", "InterlinkJobManager", "Pool", "Runner", "run_job"]

log = logging.getLogger("interlink.jobs")

_PROGRESS_EVERY = 0.5
_STATISTICS_EVERY = 1.0

Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]


def _json(value: Any) -> Json | None:
    return None if value is None else Json(value)


def _utc_in(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


class _Requeue(Exception):
    """Raised to Procrastinate's worker: put the job back in `todo` after `delay`."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"back to the queue in {delay:.3f}s")
        self.delay = delay


class _DeadLetter(Exception):
    """Raised to Procrastinate's worker: the job ends `failed` (already recorded)."""


class HandBack(pretry.BaseRetryStrategy):
    """Procrastinate puts back in `todo` exactly the jobs interlink runs again."""

    def get_retry_decision(
        self, *, exception: BaseException, job: pjobs.Job
    ) -> pretry.RetryDecision | None:
        if isinstance(exception, _Requeue):
            return pretry.RetryDecision(retry_at=_utc_in(exception.delay))
        if isinstance(exception, _DeadLetter):
            return None
        # Cut off at shutdown (CancelledError), or the bookkeeping itself failed (the
        # database went away): the next attempt starts from interlink's row as it is.
        return pretry.RetryDecision(retry_at=_utc_in(1.0))


class _Running:
    """One attempt in progress: its job, the cancel flag and progress not yet saved."""

    __slots__ = (
        "backend_id",
        "cancel_requested",
        "job",
        "lost",
        "progress",
        "stopping",
        "unsaved",
    )

    def __init__(self, job: Job, backend_id: int, stopping: asyncio.Event) -> None:
        self.job = job
        self.backend_id = backend_id
        self.stopping = stopping
        self.cancel_requested = job.cancel_requested
        self.lost = False
        """The row is no longer this attempt's: it stops, and its answer is not written."""
        self.progress: dict[str, Any] | None = None
        self.unsaved = False

    def should_stop(self) -> bool:
        return self.cancel_requested or self.lost or self.stopping.is_set()

    def report(self, progress: dict[str, Any]) -> None:
        self.progress = progress
        self.unsaved = True


class _Ending(NamedTuple):
    """The interlink update to run with Procrastinate's acknowledgement of a job."""

    sql: str
    params: dict[str, Any]
    job: Job
    outcome: Outcome


class InterlinkJobManager(JobManager):
    """Procrastinate's job manager with interlink's bookkeeping folded into its own
    statements: the claim starts the interlink job, the acknowledgement ends it."""

    def __init__(self, connector: procrastinate.PsycopgConnector, runner: Runner) -> None:
        super().__init__(connector)
        self._runner = runner

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> pjobs.Job | None:
        assert queues is not None and list(queues) == [QUEUE_NAME]
        return await self._runner.claim(worker_id)

    async def finish_job(self, job: pjobs.Job, status: pjobs.Status, delete_job: bool) -> None:
        params = {"end_status": status.value, "delete_job": delete_job}
        if not await self._runner.acknowledge(job, ACK_FINISH, params):
            await super().finish_job(job, status, delete_job)

    async def retry_job(
        self,
        job: pjobs.Job,
        retry_at: datetime.datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        params = {
            "retry_at": retry_at or datetime.datetime.now(datetime.UTC),
            "new_priority": priority,
            "new_queue": queue,
            "new_lock": lock,
        }
        if not await self._runner.acknowledge(job, ACK_RETRY, params):
            await super().retry_job(job, retry_at, priority, queue, lock)


class Runner:
    """What one `work()` call shares with the jobs its Procrastinate worker runs."""

    def __init__(
        self,
        queue: ProcrastinateQueue,
        pool: Pool,
        kinds: JobKinds,
        stats: WorkerStats,
        stop: asyncio.Event,
    ) -> None:
        self.queue = queue
        self.pool = pool
        self.kinds = kinds
        self.stats = stats
        self.stop = stop
        self.settings = queue.config.jobs
        self.worker = f"{queue.store.owner}:{uuid.uuid4().hex[:8]}"
        """This worker's name in `interlink_jobs.worker`: host, pid, and one per `work()`."""
        self.running: dict[int, _Running] = {}
        """By interlink job id."""
        self.claimed: dict[int, Job | None] = {}
        """By Procrastinate job id: the interlink job its claim started (None: not started)."""
        self.endings: dict[int, _Ending] = {}
        """By Procrastinate job id: the interlink update to run with its acknowledgement."""
        self.discarded: set[int] = set()
        """Procrastinate job ids whose acknowledgement does nothing: the attempt lost its
        lease, and the job is another attempt's now."""
        self.fetched = 0
        self.closing = asyncio.Event()
        """Set when `work()` ends: the side loops stop at their next turn."""

    async def _one(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Run one statement; its first row, if it has rows."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone() if cursor.pgresult and cursor.pgresult.nfields else None

    # -- Procrastinate's statements, with ours in them ---------------------------------------

    async def claim(self, worker_id: int) -> pjobs.Job | None:
        async with self.pool.connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            await cursor.execute(CLAIM, (worker_id, self.worker))
            row = await cursor.fetchone()
        if row is None or row[0] is None:
            return None
        self.fetched += 1
        claimed, job = claimed_from_row(row, self.worker)
        self.claimed[row[0]] = job
        return claimed

    async def acknowledge(self, job: pjobs.Job, ack: str, params: dict[str, Any]) -> bool:
        """Run the ending of `job` with Procrastinate's `ack`; False when there is none (then
        Procrastinate acknowledges on its own)."""
        assert job.id is not None
        if job.id in self.discarded:
            self.discarded.discard(job.id)
            return True
        ending = self.endings.pop(job.id, None)
        if ending is None:
            return False
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                f"WITH ending AS ({ending.sql}) {ack}",
                {**ending.params, **params, "backend_id": job.id},
            )
            rows = await cursor.fetchall()
        acknowledged = bool(rows)
        if acknowledged:
            outcome = ending.outcome
            if ack is ACK_RETRY and rows[0]["status"] == "cancelled":
                # Cancelled while running: the retry ended the job instead.
                outcome = replace(outcome, status="cancelled")
            self.stats.count(ending.job.kind, outcome)
        else:  # the lease was lost after the last look: neither row changed
            await self._lose_now(ending.job)
        return True

    def _lose(self, running: _Running, holder: str) -> None:
        """The attempt's lease is lost: tell it to stop, and never write its answer."""
        if running.lost:
            return
        running.lost = True
        warn_lease_lost(running.job.id, holder)

    async def _lose_now(self, job: Job) -> None:
        """An ending of `job` changed nothing: say who holds the job now."""
        self.stats.lost += 1
        state = await self._one(STATE, {"id": job.id})
        holder = holder_of(state["worker"], state["status"]) if state else holder_of(None, None)
        warn_lease_lost(job.id, holder)

    # -- one job ----------------------------------------------------------------------------

    async def run(self, context: procrastinate.JobContext, job_id: int) -> None:
        """The body of the Procrastinate task: one attempt of interlink job `job_id`."""
        backend_id = context.job.id
        assert backend_id is not None
        job = self.claimed.pop(backend_id, None)
        if job is None:
            # The claim's UPDATE sees interlink_jobs as of the statement's start, while
            # Procrastinate's function may find a job committed a moment later: start it
            # on its own then.
            row = await self._one(START, {"id": job_id, "worker": self.worker})
            if row is None:
                await self._not_startable(job_id)
                return
            job = job_from_row(row)
            log.debug("job %s: started apart from its claim", job.id)
        earlier = self.running.get(job.id)
        if earlier is not None:
            # Recovered (this worker looked stalled) and claimed again by this same worker
            # while the earlier attempt still runs: that one is lost like any other.
            self._lose(earlier, f"{self.worker} (which claimed it again)")
        running = _Running(job, backend_id, self.stop)
        self.running[job.id] = running
        try:
            job_context = JobContext(
                job,
                self.queue.config,
                should_stop=running.should_stop,
                report=running.report,
                services={"store": self.queue.store, "queue": self.queue},
            )
            job_started(job)
            began = time.monotonic()
            try:
                outcome = await execute(job, self.kinds, job_context, self.settings)
            except asyncio.CancelledError:
                if context.abort_reason() is not AbortReason.USER_REQUEST:
                    # The worker's graceful shutdown ran out of time: hand the job back.
                    stopped = Outcome("cancelled", error="worker stopped")
                    job_finished(job, stopped, time.monotonic() - began)
                    with contextlib.suppress(_Requeue, pexc.JobAborted):
                        await self._end(running, stopped)
                    raise
                # Aborted with Procrastinate's own tools: a cancellation like ours.
                await self._one(ASK_CANCEL, self._mine(running))
                outcome = Outcome("cancelled", error="cancelled while running")
            job_finished(job, outcome, time.monotonic() - began)
            await self._end(running, outcome)
        finally:
            if self.running.get(job.id) is running:
                del self.running[job.id]

    def _mine(self, running: _Running) -> dict[str, Any]:
        """The parameters that fence a write to the attempt's row (`_MINE` in the SQL)."""
        return {"id": running.job.id, "worker": self.worker, "attempts": running.job.attempts}

    async def _end(self, running: _Running, outcome: Outcome) -> None:
        """Record how the attempt ended: completed, retried and failed ride on
        Procrastinate's acknowledgement that follows; a stopped attempt is written now.
        An attempt that lost its lease writes nothing, and its acknowledgement does nothing."""
        job = running.job
        if running.lost:
            self.discarded.add(running.backend_id)
            self.stats.lost += 1
            return
        params: dict[str, Any] = {
            **self._mine(running),
            "error": outcome.error,
            "progress": _json(running.progress) if running.unsaved else None,
        }
        if outcome.status == "completed":
            params["result"] = _json(outcome.result)
            self.endings[running.backend_id] = _Ending(COMPLETED, params, job, outcome)
            return
        if outcome.status == "retry":
            params["given_back"] = 0 if outcome.spent else 1
            self.endings[running.backend_id] = _Ending(RETRY, params, job, outcome)
            raise _Requeue(outcome.delay)
        if outcome.status == "failed":
            self.endings[running.backend_id] = _Ending(FAILED, params, job, outcome)
            raise _DeadLetter(outcome.error or "failed")
        row = await self._one(STOPPED, params)
        if row is None:  # lost after the last look
            self.discarded.add(running.backend_id)
            await self._lose_now(job)
            return
        self.stats.cancelled += 1
        if row["status"] == "cancelled":
            raise pexc.JobAborted(outcome.error or "cancelled")
        raise _Requeue(0.0)

    async def _not_startable(self, job_id: int) -> None:
        """The interlink job may not start: cancelled before it started, finished
        already, or still `running` from an attempt whose worker was lost and with no
        attempts left."""
        state = await self._one(STATE, {"id": job_id})
        status = state["status"] if state is not None else None
        if status == "running":
            lost = await self._one(LOST, {"id": job_id})
            status = lost["status"] if lost is not None else status
            self.stats.reclaimed += 1
        elif status == "queued":  # out of attempts, which no path should leave behind
            await self._one(GIVE_UP, {"id": job_id})
        if status == "completed":
            return
        if status == "cancelled":
            raise pexc.JobAborted("cancelled before it started")
        raise _DeadLetter(f"interlink job {job_id} is {status or 'missing'}")

    # -- side tasks -------------------------------------------------------------------------

    async def _pause(self, seconds: float) -> bool:
        """Sleep `seconds`; False once `closing` is set (at once if it is set meanwhile).

        The side loops check this rather than trusting cancellation alone: a cancellation
        that lands while psycopg_pool hands over a connection can be lost, and a loop that
        missed it would keep `work()` from ever returning."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)
        return not self.closing.is_set()

    async def watch(self) -> None:
        """Every half second while jobs run: save reported progress, and read whether each
        attempt still holds its job (and whether it was asked to stop)."""
        while await self._pause(_PROGRESS_EVERY):
            mine = [running for running in self.running.values() if not running.lost]
            if not mine:
                continue
            try:
                for running in mine:
                    if running.unsaved:
                        running.unsaved = False
                        saved = await self._one(
                            SAVE_PROGRESS,
                            {**self._mine(running), "progress": _json(running.progress)},
                        )
                        if saved is None:
                            running.unsaved = True  # kept for the ending, if it is still ours
                async with self.pool.connection() as conn:
                    cursor = await conn.execute(
                        HELD,
                        {
                            "worker": self.worker,
                            "ids": [r.job.id for r in mine],
                            "attempts": [r.job.attempts for r in mine],
                        },
                    )
                    rows = await cursor.fetchall()
                for row in rows:
                    found = self.running.get(row["id"])
                    if found is None or found.job.attempts != row["attempts"]:
                        continue
                    if not row["held"]:
                        self._lose(found, holder_of(row["worker"], row["status"]))
                    elif row["cancel_requested"]:
                        found.cancel_requested = True
            except psycopg.Error as exc:
                log.warning("could not save job progress or read cancel requests: %s", exc)

    async def keep_statistics(self) -> None:
        """Every second: re-analyze a queue table whose planner statistics went stale."""
        failing = False
        while await self._pause(_STATISTICS_EVERY):
            try:
                await self.analyze_stale()
            except psycopg.Error as exc:
                if not failing:  # once per outage, not every second of it
                    log.warning("could not refresh the queue tables' statistics: %s", exc)
                failing = True
            else:
                failing = False

    async def analyze_stale(self) -> list[str]:
        """ANALYZE the queue tables that changed by half since their last ANALYZE; the
        names of those analyzed (none while another worker is at it)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(STALE_STATISTICS)
            if not await cursor.fetchall():
                return []  # the common case: one read, no transaction
            async with conn.transaction():
                cursor = await conn.execute(f"SELECT pg_try_advisory_xact_lock({STATISTICS_LOCK})")
                got = await cursor.fetchone()
                if not got or not got["pg_try_advisory_xact_lock"]:
                    return []
                # Again under the lock: another worker may have analyzed them meanwhile.
                cursor = await conn.execute(STALE_STATISTICS)
                stale = [(row["schema"], row["name"]) for row in await cursor.fetchall()]
                if not stale:
                    return []
                tables = sql.SQL(", ").join(sql.Identifier(*table) for table in stale)
                await conn.execute(sql.SQL("ANALYZE (SKIP_LOCKED) {}").format(tables))
        names = [name for _, name in stale]
        log.debug("analyzed %s", ", ".join(names))
        return names

    async def recover_forever(self, app: procrastinate.App) -> None:
        while await self._pause(self.settings.lease / 3):
            try:
                await self.recover(app)
            except (psycopg.Error, pexc.ConnectorException) as exc:
                log.warning("stalled-job recovery failed, trying again later: %s", exc)

    async def recover(self, app: procrastinate.App) -> int:
        """Run again (or dead-letter) the jobs of workers that stopped heartbeating."""
        recovered = 0
        async with self.pool.connection() as lock_conn:
            cursor = await lock_conn.execute(f"SELECT pg_try_advisory_lock({RECOVERY_LOCK})")
            got = await cursor.fetchone()
            if not got or not got["pg_try_advisory_lock"]:
                return 0  # another worker is recovering right now
            try:
                stalled = await app.job_manager.get_stalled_jobs(
                    task_name=TASK_NAME, seconds_since_heartbeat=self.settings.lease
                )
                for stalled_job in stalled:
                    if await self._recover_one(app, stalled_job):
                        recovered += 1
            finally:
                await lock_conn.execute(f"SELECT pg_advisory_unlock({RECOVERY_LOCK})")
        self.stats.reclaimed += recovered
        return recovered

    async def _recover_one(self, app: procrastinate.App, stalled: pjobs.Job) -> bool:
        assert stalled.id is not None
        job_id = int(stalled.task_kwargs["job_id"])  # type: ignore[arg-type]
        row = await self._one(LOST, {"id": job_id})
        if row is None:
            row = await self._one(STATE, {"id": job_id})
        status = row["status"] if row is not None else "failed"
        manager = app.job_manager
        try:
            if status == "queued":
                log.warning("job %s: its worker was lost; it runs again", job_id)
                await manager.retry_job(stalled)
            else:
                if status == "failed":
                    log.warning("job %s: its worker was lost; no attempts left", job_id)
                ending = {
                    "completed": pjobs.Status.SUCCEEDED,
                    "cancelled": pjobs.Status.ABORTED,
                }.get(status, pjobs.Status.FAILED)
                await manager.finish_job_by_id_async(stalled.id, ending, delete_job=False)
        except pexc.ConnectorException as exc:  # it moved on meanwhile
            log.info("job %s changed while it was recovered: %s", job_id, exc)
            return False
        return True


async def run_job(context: procrastinate.JobContext, job_id: int) -> None:
    runner: Runner = context.additional_context["interlink"]
    await runner.run(context, job_id)
