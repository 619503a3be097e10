"""`ProcrastinateQueue`: the job queue on PostgreSQL, run by Procrastinate's worker.

`interlink_jobs` stays the record that the API reads (`get`/`list`/`counts` are plain SQL
on it) and that decides what a job does next. Procrastinate holds one job per interlink
job (task `interlink.run_job`, args `{"job_id": N}`, queue `interlink`, the job's `lock`
and `priority`; its id in `interlink_jobs.backend_id`) and brings the worker: claims with
`SKIP LOCKED`, one running job per lock, LISTEN/NOTIFY wake-ups, worker heartbeats.

Statements per job (RT = a round trip to the server):

```
enqueue  API process, on the caller's connection (outbox)                      1 RT
         INSERT INTO interlink_jobs ... SELECT ..., procrastinate_defer_jobs_v1(...)
         (with an idempotency key: + a SELECT for the key, inside a savepoint)
claim    worker: procrastinate_fetch_job_v2 and UPDATE interlink_jobs -> running,   1 RT
         attempts + 1, in one statement (Procrastinate's fetch_job, overridden); a
         job committed while that statement ran is started by a second UPDATE
run      execute(): the kind's handler
ack      UPDATE interlink_jobs -> completed / queued again / failed, inside the   1 RT
         statement of Procrastinate's own procrastinate_finish_job_v1 or
         procrastinate_retry_job_v2 (its finish_job / retry_job, overridden)
```

Two round trips per job in the worker, on a pool of autocommit connections that are not
checked at checkout; Procrastinate alone with its stock connector spends about eight
(a check at each checkout, BEGIN and COMMIT around each of its two queries), so the
interlink record costs no extra round trip. Rarer paths write on their own: a stopped
attempt (cancelled, or handed back unspent when the worker stops), progress reports (at
most every 0.5 s per job) and reading cancel requests of running jobs (every 0.5 s
while any runs, one SELECT for all of them).

What the Procrastinate job does: `_HandBack`, the task's retry strategy, puts it back in
`todo` exactly when interlink runs the job again (a retry with `execute()`'s backoff, in
`scheduled_at`: a waiting retry lives in the database, not in a worker); a dead letter
ends `failed`, a cancelled job `aborted`. Cancelling a queued job cancels both.

Crashes. A SIGKILLed worker stops heartbeating (every `lease/3`); after `lease` seconds
its `doing` jobs are stalled. Every worker runs Procrastinate's recovery recipe
(`get_stalled_jobs` + `retry_job`) when it starts and every `lease/3`, under an advisory
lock so one recoverer acts at a time, and updates interlink first: the lost attempt
counts, a job with no attempts left is dead-lettered (`failed`, "its worker was lost"),
one whose cancel was asked for ends `cancelled`. Each step can be repeated, so a
recoverer killed half way leaves nothing the next pass cannot finish. Liveness is the
worker's heartbeat, not a lease per job: a job may run far longer than `lease`, as long
as it does not block the event loop that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import orjson
import procrastinate
import psycopg
import sqlalchemy as sa
from procrastinate import exceptions as pexc, jobs as pjobs, retry as pretry
from procrastinate.job_context import AbortReason
from procrastinate.manager import JobManager
from procrastinate.schema import SchemaManager
from procrastinate.worker import Worker
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.types.json import Json, set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from interlink.config import InterlinkConfig
from interlink.store import JOB_STATUSES, Store, jobs

from ._model import Job, JobFilter, JobSpec
from ._queue import JobContext, JobKinds, Outcome, WorkerStats, execute

__all__ = ["QUEUE_NAME", "TASK_NAME", "ProcrastinateQueue", "apply_schema"]

log = logging.getLogger("interlink.jobs")

TASK_NAME = "interlink.run_job"
QUEUE_NAME = "interlink"
"""The Procrastinate queue our jobs are deferred to and our workers listen on."""

_PROGRESS_EVERY = 0.5

_Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def apply_schema(engine: sa.Engine) -> bool:
    """Create Procrastinate's tables and functions unless they exist; True if it did.

    Safe when several processes start at once: they take turns on an advisory lock
    (per schema) and only the first finds the tables missing.
    """
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock("
                "hashtext('interlink.procrastinate_schema.' || coalesce(current_schema(), '')))"
            )
        )
        if conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar():
            return False
        # The driver's own execute: the schema is many statements with literal % signs.
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute(SchemaManager.get_schema())
    log.info("created Procrastinate's schema")
    return True


# -- statements ---------------------------------------------------------------------------

_ENQUEUE = sa.text(
    """
    INSERT INTO interlink_jobs (id, kind, args, status, priority, attempts, max_attempts,
        lock, pipeline, run_at, created_at, cancel_requested, idempotency_key, backend_id)
    SELECT new.id, :kind, CAST(:args AS json), 'queued', CAST(:priority AS integer), 0,
        :max_attempts, CAST(:lock AS varchar), :pipeline, :run_at, :created_at, false,
        :idempotency_key,
        (procrastinate_defer_jobs_v1(ARRAY[ROW(
            CAST(:queue AS varchar), CAST(:task AS varchar), CAST(:priority AS integer),
            CAST(:lock AS varchar), NULL, jsonb_build_object('job_id', new.id),
            CAST(:scheduled_at AS timestamptz)
        )::procrastinate_job_to_defer_v1]))[1]
    FROM (SELECT nextval(pg_get_serial_sequence('interlink_jobs', 'id')) AS id) AS new
    RETURNING *
    """
).columns(*jobs.c)

# Procrastinate's claim and interlink's start in one statement: the function claims the
# next job (SKIP LOCKED, locks, priority), the UPDATE starts its interlink job; `i_id` is
# NULL when that job may not start (cancelled meanwhile, finished, or out of attempts).
_CLAIM = f"""
    WITH job AS (
        SELECT * FROM procrastinate_fetch_job_v2(ARRAY['{QUEUE_NAME}']::varchar[], %s)
    ), started AS (
        UPDATE interlink_jobs AS i
           SET status = 'running', attempts = i.attempts + 1, started_at = %s,
               worker = %s, finished_at = NULL, error = NULL
          FROM job
         WHERE job.task_name = '{TASK_NAME}' AND i.id = (job.args ->> 'job_id')::integer
           AND i.status IN ('queued', 'running') AND i.attempts < i.max_attempts
     RETURNING i.id, i.kind, i.args, i.priority, i.attempts, i.max_attempts, i.lock,
               i.pipeline, i.run_at, i.created_at, i.cancel_requested, i.progress, i.result
    )
    SELECT job.id, job.status, job.task_name, job.priority, job.lock, job.queueing_lock,
           job.args, job.scheduled_at, job.queue_name, job.attempts, job.worker_id, s.*
      FROM job LEFT JOIN started AS s ON true
"""

# The same start, on its own (see _Runner.run).
_START = """
    UPDATE interlink_jobs
       SET status = 'running', attempts = attempts + 1, started_at = %(now)s,
           worker = %(worker)s, finished_at = NULL, error = NULL
     WHERE id = %(id)s AND status IN ('queued', 'running') AND attempts < max_attempts
 RETURNING *
"""

# Each ending checks that the row is still this attempt's: a job its worker was presumed
# lost for (and that runs again elsewhere) must not be overwritten by the old attempt.
_MINE = "WHERE id = %(id)s AND status = 'running' AND attempts = %(attempts)s"
_PROGRESS = "progress = COALESCE(%(progress)s, progress)"

_COMPLETED = f"""
    UPDATE interlink_jobs
       SET status = 'completed', result = %(result)s, finished_at = %(now)s, {_PROGRESS}
     {_MINE}
"""
_RETRY = f"""
    UPDATE interlink_jobs
       SET status = 'queued', run_at = %(run_at)s, error = %(error)s, worker = NULL,
           {_PROGRESS}
     {_MINE}
"""
_FAILED = f"""
    UPDATE interlink_jobs
       SET status = 'failed', error = %(error)s, finished_at = %(now)s, {_PROGRESS}
     {_MINE}
"""
# A stopped attempt: cancelled if that was asked for, else handed back unspent.
_STOPPED = f"""
    UPDATE interlink_jobs
       SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
           attempts = CASE WHEN cancel_requested THEN attempts ELSE attempts - 1 END,
           finished_at = CASE WHEN cancel_requested THEN %(now)s END,
           error = CASE WHEN cancel_requested THEN %(error)s ELSE error END,
           worker = CASE WHEN cancel_requested THEN worker END, {_PROGRESS}
     {_MINE}
 RETURNING status
"""
# An ending rides on Procrastinate's acknowledgement of the same job (a data-modifying
# WITH runs whether or not the query reads it).
_ACK_FINISH = "SELECT procrastinate_finish_job_v1(%(backend_id)s, %(end_status)s, %(delete_job)s)"
_ACK_RETRY = (
    "SELECT procrastinate_retry_job_v2(%(backend_id)s, %(retry_at)s, %(new_priority)s, "
    "%(new_queue)s, %(new_lock)s)"
)
_SAVE_PROGRESS = "UPDATE interlink_jobs SET progress = %(progress)s " + _MINE
_CANCEL_REQUESTED = "SELECT id FROM interlink_jobs WHERE id = ANY(%(ids)s) AND cancel_requested"
_ASK_CANCEL = "UPDATE interlink_jobs SET cancel_requested = true WHERE id = %(id)s"
_STATE = "SELECT status FROM interlink_jobs WHERE id = %(id)s"

# Recovery of a job whose worker was lost while it ran.
_WORKER_LOST = "its worker was lost (killed or its lease ran out)"
_LOST = f"""
    UPDATE interlink_jobs
       SET status = CASE WHEN cancel_requested THEN 'cancelled'
                         WHEN attempts >= max_attempts THEN 'failed'
                         ELSE 'queued' END,
           finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts
                              THEN %(now)s END,
           error = CASE
               WHEN cancel_requested THEN '{_WORKER_LOST} while it was being cancelled'
               WHEN attempts >= max_attempts THEN
                   '{_WORKER_LOST}; gave up after ' || attempts || ' attempts'
               ELSE '{_WORKER_LOST} during attempt ' || attempts
           END,
           run_at = %(now)s, worker = NULL
     WHERE id = %(id)s AND status = 'running'
 RETURNING status
"""
_GIVE_UP = """
    UPDATE interlink_jobs SET status = 'failed', finished_at = %(now)s,
           error = 'gave up after ' || attempts || ' attempts'
     WHERE id = %(id)s AND status = 'queued'
"""
_RECOVERY_LOCK = "hashtext('interlink.recover_stalled.' || coalesce(current_schema(), ''))"


def _job(row: Mapping[Any, Any]) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        args=row["args"] or {},
        status=row["status"],
        priority=row["priority"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        lock=row["lock"],
        pipeline=row["pipeline"],
        run_at=row["run_at"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker=row["worker"],
        cancel_requested=bool(row["cancel_requested"]),
        progress=row["progress"],
        result=row["result"],
        error=row["error"],
    )


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


class _HandBack(pretry.BaseRetryStrategy):
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

    __slots__ = ("backend_id", "cancel_requested", "job", "progress", "stopping", "unsaved")

    def __init__(self, job: Job, backend_id: int, stopping: asyncio.Event) -> None:
        self.job = job
        self.backend_id = backend_id
        self.stopping = stopping
        self.cancel_requested = job.cancel_requested
        self.progress: dict[str, Any] | None = None
        self.unsaved = False

    def should_stop(self) -> bool:
        return self.cancel_requested or self.stopping.is_set()

    def report(self, progress: dict[str, Any]) -> None:
        self.progress = progress
        self.unsaved = True


def _claimed(row: tuple[Any, ...], now: float, worker: str) -> tuple[pjobs.Job, Job | None]:
    """Procrastinate's job, and the interlink job its claim started (None: not started)."""
    claimed = pjobs.Job(
        id=row[0],
        status=row[1],
        task_name=row[2],
        priority=row[3],
        lock=row[4],
        queueing_lock=row[5],
        task_kwargs=row[6],
        scheduled_at=row[7],
        queue=row[8],
        attempts=row[9],
        worker_id=row[10],
    )
    if row[11] is None:
        return claimed, None
    job = Job(
        id=row[11],
        kind=row[12],
        args=row[13] or {},
        status="running",
        priority=row[14],
        attempts=row[15],
        max_attempts=row[16],
        lock=row[17],
        pipeline=row[18],
        run_at=row[19],
        created_at=row[20],
        started_at=now,
        worker=worker,
        cancel_requested=bool(row[21]),
        progress=row[22],
        result=row[23],
    )
    return claimed, job


class _JobManager(JobManager):
    """Procrastinate's job manager with interlink's bookkeeping folded into its own
    statements: the claim starts the interlink job, the acknowledgement ends it."""

    def __init__(self, connector: procrastinate.PsycopgConnector, runner: _Runner) -> None:
        super().__init__(connector)
        self._runner = runner

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> pjobs.Job | None:
        assert queues is not None and list(queues) == [QUEUE_NAME]
        return await self._runner.claim(worker_id)

    async def finish_job(self, job: pjobs.Job, status: pjobs.Status, delete_job: bool) -> None:
        params = {"end_status": status.value, "delete_job": delete_job}
        if not await self._runner.acknowledge(job, _ACK_FINISH, params):
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
        if not await self._runner.acknowledge(job, _ACK_RETRY, params):
            await super().retry_job(job, retry_at, priority, queue, lock)


class _Runner:
    """What one `work()` call shares with the jobs its Procrastinate worker runs."""

    def __init__(
        self,
        queue: ProcrastinateQueue,
        pool: _Pool,
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
        self.worker = queue.store.owner
        self.running: dict[int, _Running] = {}
        """By interlink job id."""
        self.claimed: dict[int, Job | None] = {}
        """By Procrastinate job id: the interlink job its claim started (None: not started)."""
        self.endings: dict[int, tuple[str, dict[str, Any]]] = {}
        """By Procrastinate job id: the interlink update to run with its acknowledgement."""
        self.fetched = 0

    async def _one(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Run one statement; its first row, if it has rows."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone() if cursor.pgresult and cursor.pgresult.nfields else None

    # -- Procrastinate's statements, with ours in them ---------------------------------------

    async def claim(self, worker_id: int) -> pjobs.Job | None:
        now = time.time()
        async with self.pool.connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            await cursor.execute(_CLAIM, (worker_id, now, self.worker))
            row = await cursor.fetchone()
        if row is None or row[0] is None:
            return None
        self.fetched += 1
        claimed, job = _claimed(row, now, self.worker)
        self.claimed[row[0]] = job
        return claimed

    async def acknowledge(self, job: pjobs.Job, ack: str, params: dict[str, Any]) -> bool:
        assert job.id is not None
        ending = self.endings.pop(job.id, None)
        if ending is None:
            return False
        sql, ending_params = ending
        async with self.pool.connection() as conn:
            await conn.execute(
                f"WITH ending AS ({sql}) {ack}", {**ending_params, **params, "backend_id": job.id}
            )
        return True

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
            now = time.time()
            row = await self._one(_START, {"id": job_id, "now": now, "worker": self.worker})
            if row is None:
                await self._not_startable(job_id, now)
                return
            job = _job(row)
            log.debug("job %s: started apart from its claim", job.id)
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
            try:
                outcome = await execute(job, self.kinds, job_context, self.settings)
            except asyncio.CancelledError:
                if context.abort_reason() is not AbortReason.USER_REQUEST:
                    # The worker's graceful shutdown ran out of time: hand the job back.
                    with contextlib.suppress(_Requeue, pexc.JobAborted):
                        await self._end(running, Outcome("cancelled", error="worker stopped"))
                    raise
                # Aborted with Procrastinate's own tools: a cancellation like ours.
                await self._one(_ASK_CANCEL, {"id": job.id})
                outcome = Outcome("cancelled", error="cancelled while running")
            await self._end(running, outcome)
        finally:
            self.running.pop(job.id, None)

    async def _end(self, running: _Running, outcome: Outcome) -> None:
        """Record how the attempt ended: completed, retried and failed ride on
        Procrastinate's acknowledgement that follows; a stopped attempt is written now."""
        job = running.job
        now = time.time()
        params: dict[str, Any] = {
            "id": job.id,
            "attempts": job.attempts,
            "now": now,
            "error": outcome.error,
            "progress": _json(running.progress) if running.unsaved else None,
        }
        stats = self.stats
        if outcome.status == "completed":
            params["result"] = _json(outcome.result)
            self.endings[running.backend_id] = (_COMPLETED, params)
            stats.completed += 1
            stats.by_kind[job.kind] = stats.by_kind.get(job.kind, 0) + 1
            return
        if outcome.status == "retry":
            params["run_at"] = now + outcome.delay
            self.endings[running.backend_id] = (_RETRY, params)
            stats.retried += 1
            raise _Requeue(outcome.delay)
        if outcome.status == "failed":
            self.endings[running.backend_id] = (_FAILED, params)
            stats.failed += 1
            raise _DeadLetter(outcome.error or "failed")
        row = await self._one(_STOPPED, params)
        stats.cancelled += 1
        if row is not None and row["status"] == "cancelled":
            raise pexc.JobAborted(outcome.error or "cancelled")
        raise _Requeue(0.0)

    async def _not_startable(self, job_id: int, now: float) -> None:
        """The interlink job may not start: cancelled before it started, finished
        already, or still `running` from an attempt whose worker was lost and with no
        attempts left."""
        state = await self._one(_STATE, {"id": job_id})
        status = state["status"] if state is not None else None
        if status == "running":
            lost = await self._one(_LOST, {"id": job_id, "now": now})
            status = lost["status"] if lost is not None else status
            self.stats.reclaimed += 1
        elif status == "queued":  # out of attempts, which no path should leave behind
            await self._one(_GIVE_UP, {"id": job_id, "now": now})
        if status == "completed":
            return
        if status == "cancelled":
            raise pexc.JobAborted("cancelled before it started")
        raise _DeadLetter(f"interlink job {job_id} is {status or 'missing'}")

    # -- side tasks -------------------------------------------------------------------------

    async def watch(self) -> None:
        """Every half second while jobs run: save reported progress, read cancel requests."""
        while True:
            await asyncio.sleep(_PROGRESS_EVERY)
            mine = list(self.running.values())
            if not mine:
                continue
            try:
                for running in mine:
                    if running.unsaved:
                        running.unsaved = False
                        await self._one(
                            _SAVE_PROGRESS,
                            {
                                "id": running.job.id,
                                "attempts": running.job.attempts,
                                "progress": _json(running.progress),
                            },
                        )
                async with self.pool.connection() as conn:
                    cursor = await conn.execute(
                        _CANCEL_REQUESTED, {"ids": [r.job.id for r in mine]}
                    )
                    for row in await cursor.fetchall():
                        if row["id"] in self.running:
                            self.running[row["id"]].cancel_requested = True
            except psycopg.Error as exc:
                log.warning("could not save job progress or read cancel requests: %s", exc)

    async def recover_forever(self, app: procrastinate.App) -> None:
        while True:
            await asyncio.sleep(self.settings.lease / 3)
            try:
                await self.recover(app)
            except (psycopg.Error, pexc.ConnectorException) as exc:
                log.warning("stalled-job recovery failed, trying again later: %s", exc)

    async def recover(self, app: procrastinate.App) -> int:
        """Run again (or dead-letter) the jobs of workers that stopped heartbeating."""
        recovered = 0
        async with self.pool.connection() as lock_conn:
            cursor = await lock_conn.execute(f"SELECT pg_try_advisory_lock({_RECOVERY_LOCK})")
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
                await lock_conn.execute(f"SELECT pg_advisory_unlock({_RECOVERY_LOCK})")
        self.stats.reclaimed += recovered
        return recovered

    async def _recover_one(self, app: procrastinate.App, stalled: pjobs.Job) -> bool:
        assert stalled.id is not None
        job_id = int(stalled.task_kwargs["job_id"])  # type: ignore[arg-type]
        row = await self._one(_LOST, {"id": job_id, "now": time.time()})
        if row is None:
            row = await self._one(_STATE, {"id": job_id})
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


async def _run_job(context: procrastinate.JobContext, job_id: int) -> None:
    runner: _Runner = context.additional_context["interlink"]
    await runner.run(context, job_id)


class ProcrastinateQueue:
    """The durable job queue on PostgreSQL, with Procrastinate's worker.

    ```python
    queue = ProcrastinateQueue(Store.open("postgresql://..."), config)
    job = queue.enqueue(JobSpec("noop"))
    await queue.work(JobKinds.default(), concurrency=8, stop=stop_event)
    ```
    """

    backend: ClassVar[str] = "postgresql"

    def __init__(self, store: Store, config: InterlinkConfig) -> None:
        self.store = store
        self.config = config
        self._runners: set[_Runner] = set()
        apply_schema(store.engine)

    # -- the record: interlink_jobs --------------------------------------------------------

    def enqueue(self, spec: JobSpec, *, conn: sa.Connection | None = None) -> Job:
        if conn is None:
            with self.store.transaction() as own:
                return self._enqueue(own, spec)
        return self._enqueue(conn, spec)

    def _enqueue(self, conn: sa.Connection, spec: JobSpec) -> Job:
        now = time.time()
        run_at = now + max(spec.delay, 0.0)
        params = {
            "kind": spec.kind,
            "args": _dumps(spec.args),
            "priority": spec.priority,
            "max_attempts": spec.max_attempts or self.config.jobs.max_attempts,
            "lock": spec.lock,
            "pipeline": spec.pipeline,
            "run_at": run_at,
            "created_at": now,
            "idempotency_key": spec.idempotency_key,
            "queue": QUEUE_NAME,
            "task": TASK_NAME,
            "scheduled_at": (
                datetime.datetime.fromtimestamp(run_at, datetime.UTC) if spec.delay > 0 else None
            ),
        }
        key = spec.idempotency_key
        if key is None:
            return _job(conn.execute(_ENQUEUE, params).mappings().one())
        existing = self._by_key(conn, key)
        if existing is not None:
            return existing
        try:
            with conn.begin_nested():
                return _job(conn.execute(_ENQUEUE, params).mappings().one())
        except sa.exc.IntegrityError:
            # The same key, enqueued at the same moment by another transaction (the insert
            # waited for it to commit): that job is the answer.
            existing = self._by_key(conn, key)
            if existing is None:
                raise
            return existing

    def _by_key(self, conn: sa.Connection, key: str) -> Job | None:
        row = conn.execute(sa.select(jobs).where(jobs.c.idempotency_key == key)).first()
        return _job(row._mapping) if row is not None else None

    def get(self, job_id: int) -> Job | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return _job(row._mapping) if row is not None else None

    def list(self, query: JobFilter | None = None) -> list[Job]:
        query = query or JobFilter()
        select = sa.select(jobs).order_by(jobs.c.id.desc()).limit(query.limit)
        if query.status is not None:
            select = select.where(jobs.c.status == query.status)
        if query.pipeline is not None:
            select = select.where(jobs.c.pipeline == query.pipeline)
        if query.kind is not None:
            select = select.where(jobs.c.kind == query.kind)
        if query.before is not None:
            select = select.where(jobs.c.id < query.before)
        with self.store.engine.connect() as conn:
            return [_job(row._mapping) for row in conn.execute(select)]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        select = sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
        with self.store.engine.connect() as conn:
            for status, count in conn.execute(select):
                counts[status] = int(count)
        return counts

    def cancel(self, job_id: int) -> Job | None:
        queued = jobs.c.status == "queued"
        update = (
            sa.update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.in_(("queued", "running")))
            .values(
                status=sa.case((queued, "cancelled"), else_=jobs.c.status),
                finished_at=sa.case((queued, time.time()), else_=jobs.c.finished_at),
                error=sa.case((queued, "cancelled before it ran"), else_=jobs.c.error),
                cancel_requested=sa.case((queued, jobs.c.cancel_requested), else_=True),
            )
            .returning(*jobs.c)
        )
        with self.store.transaction() as conn:
            row = conn.execute(update).first()
            if row is None:
                row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
                return _job(row._mapping) if row is not None else None
            job = _job(row._mapping)
            if job.status == "cancelled" and row.backend_id is not None:
                conn.execute(
                    sa.text("SELECT procrastinate_cancel_job_v1(:id, false, false)"),
                    {"id": row.backend_id},
                )
        for runner in list(self._runners):
            running = runner.running.get(job_id)
            if running is not None:  # a worker of this process runs it: tell it now
                running.cancel_requested = True
        return job

    # -- the worker ------------------------------------------------------------------------

    async def work(
        self,
        kinds: JobKinds,
        *,
        concurrency: int = 1,
        stop: asyncio.Event | None = None,
        burst: bool = False,
    ) -> WorkerStats:
        """Run jobs with Procrastinate's worker until `stop` is set (or, with `burst`, until
        nothing is ready). On `stop`, running jobs see `should_stop()`, and those that stop
        go back to the queue with their attempt unspent; after `lease` seconds the rest
        are cut off and handed back too."""
        stop = stop or asyncio.Event()
        stats = WorkerStats()
        pool = await self._open_pool(concurrency)
        connector = procrastinate.PsycopgConnector()
        # Procrastinate reads its rows as dicts itself; the pool's default is the same.
        await connector.open_async(pool=pool)  # type: ignore[arg-type]
        app = procrastinate.App(connector=connector)
        app.task(name=TASK_NAME, queue=QUEUE_NAME, pass_context=True, retry=_HandBack())(_run_job)
        runner = _Runner(self, pool, kinds, stats, stop)
        app.job_manager = _JobManager(connector, runner)
        self._runners.add(runner)
        side = [asyncio.create_task(runner.watch(), name="interlink jobs: progress")]
        try:
            await runner.recover(app)
            side.append(asyncio.create_task(runner.recover_forever(app), name="recovery"))
            if burst:
                # Pass after pass, until one finds nothing ready: a job that waited for a
                # lock or was handed back during a pass runs in the next one.
                while not stop.is_set():
                    fetched = runner.fetched
                    await self._run_worker(app, runner, concurrency, wait=False)
                    if runner.fetched == fetched:
                        break
            else:
                await self._run_until_stopped(app, runner, concurrency)
        finally:
            self._runners.discard(runner)
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            await connector.close_async()
            await pool.close()
        return stats

    async def _run_until_stopped(
        self, app: procrastinate.App, runner: _Runner, concurrency: int
    ) -> None:
        """Procrastinate's worker, started again when it stops on its own: the database
        went away (a restart, a failover) or one of its side tasks failed."""
        pause = min(self.config.jobs.lease / 3, 5.0)
        while not runner.stop.is_set():
            try:
                await self._run_worker(app, runner, concurrency, wait=True)
            except (pexc.ConnectorException, psycopg.OperationalError) as exc:
                log.error("the job worker lost the database (%s); again in %.1fs", exc, pause)
                # Drop the pool's idle connections that died with it (they are not checked
                # at checkout).
                with contextlib.suppress(psycopg.Error):
                    await runner.pool.check()
            else:
                if runner.stop.is_set():
                    return
                log.error("the job worker stopped on its own; again in %.1fs", pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runner.stop.wait(), pause)

    async def _run_worker(
        self, app: procrastinate.App, runner: _Runner, concurrency: int, *, wait: bool
    ) -> None:
        settings = self.config.jobs
        worker = Worker(
            app,
            queues=[QUEUE_NAME],
            name="interlink",
            concurrency=concurrency,
            wait=wait,
            fetch_job_polling_interval=settings.poll_interval,
            listen_notify=wait,
            install_signal_handlers=False,
            update_heartbeat_interval=settings.lease / 3,
            stalled_worker_timeout=settings.lease,
            shutdown_graceful_timeout=settings.lease / 2,
            additional_context={"interlink": runner},
        )

        async def stop_on_event() -> None:
            await runner.stop.wait()
            worker.stop()  # type: ignore[no-untyped-call]

        stopper = asyncio.create_task(stop_on_event())
        try:
            await worker.run()  # type: ignore[no-untyped-call]
        finally:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper

    async def _open_pool(self, concurrency: int) -> _Pool:
        """Autocommit connections, not checked at checkout (each check is a round trip;
        a connection found broken on return is dropped by the pool)."""
        engine = self.store.engine
        _args, params = engine.dialect.create_connect_args(engine.url)
        params = {k: v for k, v in params.items() if k != "context"}
        params.setdefault("application_name", "interlink worker")

        async def configure(conn: psycopg.AsyncConnection[DictRow]) -> None:
            # Not in `kwargs`: Procrastinate's listener connects with those plus its own
            # autocommit=True.
            await conn.set_autocommit(True)
            set_json_dumps(_dumps, conn)
            set_json_loads(orjson.loads, conn)

        pool: _Pool = AsyncConnectionPool(
            connection_class=psycopg.AsyncConnection[DictRow],
            kwargs={**params, "row_factory": dict_row},
            min_size=2,
            max_size=concurrency + 4,
            configure=configure,
            open=False,
            name="interlink-jobs",
        )
        await pool.open(wait=True)
        return pool

    def close(self) -> None:
        """Nothing to release: each `work()` opens and closes its own pool."""
