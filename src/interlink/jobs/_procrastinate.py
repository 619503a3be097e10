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
         procrastinate_retry_job_v2 (its finish_job / retry_job, overridden), which
         runs only if the UPDATE changed the row (see Fencing)
```

Two round trips per job in the worker, on a pool of autocommit connections that are not
checked at checkout; Procrastinate alone with its stock connector spends about eight
(a check at each checkout, BEGIN and COMMIT around each of its two queries), so the
interlink record costs no extra round trip. Rarer paths write on their own: a stopped
attempt (cancelled, or handed back unspent when the worker stops), progress reports (at
most every 0.5 s per job) and reading the cancel requests of running jobs, and whether
each is still this worker's (every 0.5 s while any runs, one SELECT for all of them).

What the Procrastinate job does: `HandBack`, the task's retry strategy, puts it back in
`todo` exactly when interlink runs the job again (a retry with `execute()`'s backoff, in
`scheduled_at`: a waiting retry lives in the database, not in a worker); a dead letter
ends `failed`, a cancelled job `aborted`. Cancelling a queued job cancels both.

Fencing. Each interlink write about a running job (progress, the ending, a stopped
attempt, an abort) names the claim it belongs to: `worker` (host:pid and one id per
`work()` call) and `attempts`. Recovery may re-run the job of a worker that was only slow
(its heartbeat went stale); that worker learns it at its next look (every half second, the
same SELECT that reads cancel requests), its job's `should_stop()` turns true, and its
ending changes no row, so the acknowledgement skips Procrastinate's finish or retry too
(which would end the new attempt's Procrastinate job and lose the interlink job).

Clock. Every time in interlink_jobs is the database server's: `run_at` is the
`scheduled_at` Procrastinate releases the job at (`<= now()` in its fetch) and `started_at`
that fetch's `now()`, so `started_at >= run_at` whatever the workers' clocks say.

Crashes. A SIGKILLed worker stops heartbeating (every `lease/3`); after `lease` seconds
its `doing` jobs are stalled. Every worker runs Procrastinate's recovery recipe
(`get_stalled_jobs` + `retry_job`) when it starts and every `lease/3`, under an advisory
lock so one recoverer acts at a time, and updates interlink first: the lost attempt
counts, a job with no attempts left is dead-lettered (`failed`, "its worker was lost"),
one whose cancel was asked for ends `cancelled`. Each step can be repeated, so a
recoverer killed half way leaves nothing the next pass cannot finish. Liveness is the
worker's heartbeat, not a lease per job: a job may run far longer than `lease`, as long
as it does not block the event loop that long.

Where the code is:

```
_procrastinate.py         ProcrastinateQueue: the Queue protocol on interlink_jobs
                          (enqueue, get, list, cancel, counts) and work(), which sets up
                          Procrastinate's app, pool and worker
_procrastinate_sql.py     the statements above, the readers of their rows, and
                          apply_schema (Procrastinate's schema, under an advisory lock)
_procrastinate_worker.py  what runs inside Procrastinate's worker: InterlinkJobManager
                          (claim, acknowledgement), Runner (one attempt, cancel checks,
                          progress, stalled-job recovery), the task run_job and HandBack
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
import procrastinate
import psycopg
import sqlalchemy as sa
from procrastinate import exceptions as pexc
from procrastinate.worker import Worker
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from interlink.config import InterlinkConfig
from interlink.store import JOB_STATUSES, Store, jobs

from ._model import Job, JobFilter, JobSpec
from ._procrastinate_sql import (
    ENQUEUE,
    ENQUEUE_MANY,
    NEXT_IDS,
    QUEUE_NAME,
    TASK_NAME,
    apply_schema,
    job_from_row,
)
from ._procrastinate_worker import HandBack, InterlinkJobManager, Pool, Runner, run_job
from ._queue import JobKinds, WorkerStats

__all__ = ["QUEUE_NAME", "TASK_NAME", "ProcrastinateQueue", "apply_schema"]

log = logging.getLogger("interlink.jobs")


_DATABASE_CLOCK = sa.cast(sa.extract("epoch", sa.func.clock_timestamp()), sa.Float)
"""Now, as epoch seconds on the database server's clock (every time in interlink_jobs)."""


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


async def _stop_side_tasks(runner: Runner, tasks: list[asyncio.Task[None]]) -> None:
    """Stop the runner's side loops: they see `closing` at their next turn and are
    cancelled too, again each second in case a cancellation was lost; after 5 s the
    ones still going are left behind with an error in the log, so `work()` returns."""
    runner.closing.set()
    pending = set(tasks)
    for _ in range(5):
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
        if not pending:
            break
    else:
        names = ", ".join(sorted(task.get_name() for task in pending))
        log.error("job worker side tasks did not stop, left behind: %s", names)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("job worker side task %s failed", task.get_name(), exc_info=task.exception())


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
        self._runners: set[Runner] = set()
        apply_schema(store.engine)

    # -- the record: interlink_jobs --------------------------------------------------------

    def enqueue(self, spec: JobSpec, *, conn: sa.Connection | None = None) -> Job:
        if conn is None:
            with self.store.transaction() as own:
                return self._enqueue(own, spec)
        return self._enqueue(conn, spec)

    def _enqueue(self, conn: sa.Connection, spec: JobSpec) -> Job:
        params = {
            "kind": spec.kind,
            "args": _dumps(spec.args),
            "priority": spec.priority,
            "max_attempts": spec.max_attempts or self.config.jobs.max_attempts,
            "lock": spec.lock,
            "pipeline": spec.pipeline,
            "delay": max(spec.delay, 0.0),
            "idempotency_key": spec.idempotency_key,
            "queue": QUEUE_NAME,
            "task": TASK_NAME,
        }
        key = spec.idempotency_key
        if key is None:
            return job_from_row(conn.execute(ENQUEUE, params).mappings().one())
        existing = self._by_key(conn, key)
        if existing is not None:
            return existing
        try:
            with conn.begin_nested():
                return job_from_row(conn.execute(ENQUEUE, params).mappings().one())
        except sa.exc.IntegrityError:
            # The same key, enqueued at the same moment by another transaction (the insert
            # waited for it to commit): that job is the answer.
            existing = self._by_key(conn, key)
            if existing is None:
                raise
            return existing

    def enqueue_many(self, specs: Sequence[JobSpec], conn: sa.Connection) -> list[int]:
        if not specs:
            return []
        if any(spec.idempotency_key is not None for spec in specs):
            raise ValueError("enqueue_many takes no idempotency keys; use enqueue")
        ids = [int(row.id) for row in conn.execute(NEXT_IDS, {"count": len(specs)})]
        default = self.config.jobs.max_attempts
        conn.execute(
            ENQUEUE_MANY,
            {
                "ids": ids,
                "kinds": [spec.kind for spec in specs],
                "args": [_dumps(spec.args) for spec in specs],
                "priorities": [spec.priority for spec in specs],
                "max_attempts": [spec.max_attempts or default for spec in specs],
                "locks": [spec.lock for spec in specs],
                "pipelines": [spec.pipeline for spec in specs],
                "delays": [max(spec.delay, 0.0) for spec in specs],
                "queue": QUEUE_NAME,
                "task": TASK_NAME,
            },
        )
        return ids

    def _by_key(self, conn: sa.Connection, key: str) -> Job | None:
        row = conn.execute(sa.select(jobs).where(jobs.c.idempotency_key == key)).first()
        return job_from_row(row._mapping) if row is not None else None

    def get(self, job_id: int) -> Job | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return job_from_row(row._mapping) if row is not None else None

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
            return [job_from_row(row._mapping) for row in conn.execute(select)]

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
                finished_at=sa.case((queued, _DATABASE_CLOCK), else_=jobs.c.finished_at),
                error=sa.case((queued, "cancelled before it ran"), else_=jobs.c.error),
                cancel_requested=sa.case((queued, jobs.c.cancel_requested), else_=True),
            )
            .returning(*jobs.c)
        )
        with self.store.transaction() as conn:
            row = conn.execute(update).first()
            if row is None:
                row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
                return job_from_row(row._mapping) if row is not None else None
            job = job_from_row(row._mapping)
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
        app.task(name=TASK_NAME, queue=QUEUE_NAME, pass_context=True, retry=HandBack())(run_job)
        runner = Runner(self, pool, kinds, stats, stop)
        app.job_manager = InterlinkJobManager(connector, runner)
        self._runners.add(runner)
        side = [
            asyncio.create_task(runner.watch(), name="interlink jobs: progress"),
            asyncio.create_task(runner.keep_statistics(), name="interlink jobs: statistics"),
        ]
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
            await _stop_side_tasks(runner, side)
            await connector.close_async()
            await pool.close()
        return stats

    async def _run_until_stopped(
        self, app: procrastinate.App, runner: Runner, concurrency: int
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
        self, app: procrastinate.App, runner: Runner, concurrency: int, *, wait: bool
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

    async def _open_pool(self, concurrency: int) -> Pool:
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

        pool: Pool = AsyncConnectionPool(
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
