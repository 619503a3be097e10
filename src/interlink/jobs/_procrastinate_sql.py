"""The SQL of the PostgreSQL queue: Procrastinate's schema, applied once, and the statements
that fold interlink's bookkeeping into Procrastinate's own (see `_procrastinate.py`).

Each statement here is run by `ProcrastinateQueue` (`ENQUEUE`) or by the worker's `Runner`
(the rest); `job_from_row` and `claimed_from_row` read the rows they return.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from procrastinate import jobs as pjobs
from procrastinate.schema import SchemaManager
from procrastinate.sql import queries as procrastinate_queries

from interlink.errors import QueueSchemaError
from interlink.http import Redactor
from interlink.store import jobs

from ._model import Job

__all__ = [
    "ACK_FINISH",
    "ACK_RETRY",
    "ASK_CANCEL",
    "CLAIM",
    "COMPLETED",
    "ENQUEUE",
    "ENQUEUE_MANY",
    "FAILED",
    "GIVE_UP",
    "HELD",
    "LOST",
    "NEXT_IDS",
    "QUEUE_NAME",
    "RECOVERY_LOCK",
    "RETRY",
    "SAVE_PROGRESS",
    "STALE_STATISTICS",
    "STATISTICS_LOCK",
    "START",
    "STATE",
    "STOPPED",
    "TASK_NAME",
    "apply_schema",
    "claimed_from_row",
    "job_from_row",
]

log = logging.getLogger("interlink.jobs")

TASK_NAME = "interlink.run_job"
QUEUE_NAME = "interlink"
"""The Procrastinate queue our jobs are deferred to and our workers listen on."""


def apply_schema(engine: sa.Engine) -> bool:
    """Create Procrastinate's tables and functions unless they exist; True if it did.

    Safe when several processes start at once: they take turns on an advisory lock
    (per schema) and only the first finds the tables missing. An existing schema must
    have every function the installed Procrastinate's queries call, or `QueueSchemaError`
    names those missing and how to migrate. (A migration that only rewrites the body of a
    function under the same name is not detected: Procrastinate keeps no schema version.)
    """
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock("
                "hashtext('interlink.procrastinate_schema.' || coalesce(current_schema(), '')))"
            )
        )
        if conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar():
            missing = conn.execute(_MISSING_FUNCTIONS, {"names": called_functions()}).scalars()
            _refuse_outdated(engine, sorted(missing))
            return False
        # The driver's own execute: the schema is many statements with literal % signs.
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute(SchemaManager.get_schema())
    log.info("created Procrastinate's schema")
    return True


# The functions interlink's own statements call (below, and the cancel in _procrastinate.py).
_OUR_CALLS = (
    "procrastinate_cancel_job_v1",
    "procrastinate_defer_jobs_v1",
    "procrastinate_fetch_job_v2",
    "procrastinate_finish_job_v1",
    "procrastinate_retry_job_v2",
)


@functools.cache
def called_functions() -> list[str]:
    """The database functions the installed Procrastinate's queries and ours call."""
    queries = "\n".join(procrastinate_queries.values())
    found = re.findall(r"\b(procrastinate_\w+_v\d+)\s*\(", queries)
    return sorted({*found, *_OUR_CALLS})


# Looked up in the schema that holds procrastinate_jobs, not anywhere on the search path.
_MISSING_FUNCTIONS = sa.text(
    """
    SELECT name FROM unnest(CAST(:names AS text[])) AS name
     WHERE NOT EXISTS (
        SELECT 1 FROM pg_proc AS p
         WHERE p.proname = name AND p.pronamespace = (
            SELECT relnamespace FROM pg_class WHERE oid = to_regclass('procrastinate_jobs')))
    """
)


def _refuse_outdated(engine: sa.Engine, missing: list[str]) -> None:
    if not missing:
        return
    version = importlib.metadata.version("procrastinate")
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    database = Redactor().url(engine.url.render_as_string(hide_password=False))
    raise QueueSchemaError(
        f"{database}: Procrastinate's schema lacks functions that procrastinate {version} "
        f"installed here calls (missing {shown}), so it was made by another release; apply "
        "its migration scripts newer than the schema, from the folder `procrastinate schema "
        "--migrations-path` prints, then start again"
    )


# -- statements ---------------------------------------------------------------------------
#
# Every time in interlink_jobs is the database server's clock, as epoch seconds: it is the
# clock that releases a job (Procrastinate's fetch takes jobs with `scheduled_at <= now()`),
# so `run_at` is the `scheduled_at` Procrastinate holds and `started_at` the claim's `now()`,
# and `started_at >= run_at` holds whatever the workers' own clocks say.

_CLOCK = "extract(epoch FROM clock_timestamp())"

ENQUEUE = sa.text(
    """
    INSERT INTO interlink_jobs (id, kind, args, status, priority, attempts, max_attempts,
        lock, pipeline, run_at, created_at, cancel_requested, idempotency_key, backend_id)
    SELECT new.id, :kind, CAST(:args AS json), 'queued', CAST(:priority AS integer), 0,
        :max_attempts, CAST(:lock AS varchar), :pipeline,
        extract(epoch FROM coalesce(new.scheduled_at, new.at)), extract(epoch FROM new.at),
        false, :idempotency_key,
        (procrastinate_defer_jobs_v1(ARRAY[ROW(
            CAST(:queue AS varchar), CAST(:task AS varchar), CAST(:priority AS integer),
            CAST(:lock AS varchar), NULL, jsonb_build_object('job_id', new.id),
            new.scheduled_at
        )::procrastinate_job_to_defer_v1]))[1]
    FROM (
        SELECT clock.id, clock.at,
               CASE WHEN CAST(:delay AS float8) > 0
                    THEN clock.at + CAST(:delay AS float8) * interval '1 second' END
               AS scheduled_at
          FROM (SELECT nextval(pg_get_serial_sequence('interlink_jobs', 'id')) AS id,
                       clock_timestamp() AS at) AS clock
    ) AS new
    RETURNING *
    """
).columns(*jobs.c)

# Several jobs in one statement (the webhook inbox's batches): ids come first (one
# `nextval` each, in order), then one row per array element, each deferred to
# Procrastinate in the same statement as ENQUEUE does for one.
NEXT_IDS = sa.text(
    "SELECT nextval(pg_get_serial_sequence('interlink_jobs', 'id')) AS id "
    "FROM generate_series(1, CAST(:count AS integer))"
)
ENQUEUE_MANY = sa.text(
    """
    INSERT INTO interlink_jobs (id, kind, args, status, priority, attempts, max_attempts,
        lock, pipeline, run_at, created_at, cancel_requested, backend_id)
    SELECT new.id, new.kind, CAST(new.args AS json), 'queued', new.priority, 0,
        new.max_attempts, new.lock, new.pipeline,
        extract(epoch FROM coalesce(new.scheduled_at, new.at)), extract(epoch FROM new.at),
        false,
        (procrastinate_defer_jobs_v1(ARRAY[ROW(
            CAST(:queue AS varchar), CAST(:task AS varchar), new.priority,
            new.lock, NULL, jsonb_build_object('job_id', new.id), new.scheduled_at
        )::procrastinate_job_to_defer_v1]))[1]
    FROM (
        SELECT t.*, clock_timestamp() AS at,
               CASE WHEN t.delay > 0
                    THEN clock_timestamp() + t.delay * interval '1 second' END
               AS scheduled_at
          FROM unnest(CAST(:ids AS bigint[]), CAST(:kinds AS varchar[]),
                      CAST(:args AS text[]), CAST(:priorities AS integer[]),
                      CAST(:max_attempts AS integer[]), CAST(:locks AS varchar[]),
                      CAST(:pipelines AS varchar[]), CAST(:delays AS float8[]))
               AS t(id, kind, args, priority, max_attempts, lock, pipeline, delay)
    ) AS new
    """
)

# Procrastinate's claim and interlink's start in one statement: the function claims the
# next job (SKIP LOCKED, locks, priority), the UPDATE starts its interlink job; `i_id` is
# NULL when that job may not start (cancelled meanwhile, finished, or out of attempts).
# `started_at` is the `now()` the function compared `scheduled_at` with.
# The job id comes from a scalar subquery so the UPDATE is always a primary-key lookup:
# written as a join, a planner with stale statistics (a queue table filled since its last
# ANALYZE) scanned every queued job through the status index on each claim.
CLAIM = f"""
    WITH job AS (
        SELECT * FROM procrastinate_fetch_job_v2(ARRAY['{QUEUE_NAME}']::varchar[], %s)
    ), started AS (
        UPDATE interlink_jobs AS i
           SET status = 'running', attempts = i.attempts + 1,
               started_at = extract(epoch FROM now()), worker = %s, finished_at = NULL,
               error = NULL
         WHERE i.id = (SELECT (job.args ->> 'job_id')::integer FROM job
                        WHERE job.task_name = '{TASK_NAME}')
           AND i.status IN ('queued', 'running') AND i.attempts < i.max_attempts
     RETURNING i.id, i.kind, i.args, i.priority, i.attempts, i.max_attempts, i.lock,
               i.pipeline, i.run_at, i.created_at, i.cancel_requested, i.progress, i.result,
               i.started_at
    )
    SELECT job.id, job.status, job.task_name, job.priority, job.lock, job.queueing_lock,
           job.args, job.scheduled_at, job.queue_name, job.attempts, job.worker_id, s.*
      FROM job LEFT JOIN started AS s ON true
"""

# The same start, on its own (see Runner.run).
START = """
    UPDATE interlink_jobs
       SET status = 'running', attempts = attempts + 1, started_at = extract(epoch FROM now()),
           worker = %(worker)s, finished_at = NULL, error = NULL
     WHERE id = %(id)s AND status IN ('queued', 'running') AND attempts < max_attempts
 RETURNING *
"""

# Each write about a running attempt is fenced: the row must still be this attempt's (its
# worker, and the attempt its claim counted). A worker presumed lost whose job runs again
# elsewhere (Procrastinate's stalled-job recovery re-runs the jobs of a worker that was
# only slow) changes nothing: its ending matches no row, and the acknowledgement below
# then skips Procrastinate's own finish or retry, which would end the new attempt's job.
_MINE = (
    "WHERE id = %(id)s AND status = 'running' AND worker = %(worker)s AND attempts = %(attempts)s"
)
_PROGRESS = "progress = COALESCE(%(progress)s, progress)"

COMPLETED = f"""
    UPDATE interlink_jobs
       SET status = 'completed', result = %(result)s, finished_at = {_CLOCK}, {_PROGRESS}
     {_MINE}
 RETURNING id
"""
# `run_at` is the very `retry_at` Procrastinate's retry (in the same statement) schedules;
# a wait for a pipeline's lock gives its attempt back (`given_back` 1).
# An attempt to retry: queued again, or cancelled when that was asked for meanwhile (the
# attempt's error is kept in the reason), as STOPPED and LOST do.
RETRY = f"""
    UPDATE interlink_jobs
       SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
           attempts = attempts - CASE WHEN cancel_requested THEN 0 ELSE %(given_back)s END,
           run_at = CASE WHEN cancel_requested THEN run_at ELSE
               coalesce(extract(epoch FROM CAST(%(retry_at)s AS timestamptz)), {_CLOCK}) END,
           finished_at = CASE WHEN cancel_requested THEN {_CLOCK} END,
           error = CASE WHEN cancel_requested
               THEN 'cancelled while running; its attempt ended in '
                    || coalesce(CAST(%(error)s AS text), 'an error')
               ELSE %(error)s END,
           worker = CASE WHEN cancel_requested THEN worker END, {_PROGRESS}
     {_MINE}
 RETURNING status
"""
FAILED = f"""
    UPDATE interlink_jobs
       SET status = 'failed', error = %(error)s, finished_at = {_CLOCK}, {_PROGRESS}
     {_MINE}
 RETURNING id
"""
# A stopped attempt: cancelled if that was asked for, else handed back unspent.
STOPPED = f"""
    UPDATE interlink_jobs
       SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
           attempts = CASE WHEN cancel_requested THEN attempts ELSE attempts - 1 END,
           finished_at = CASE WHEN cancel_requested THEN {_CLOCK} END,
           error = CASE WHEN cancel_requested THEN %(error)s ELSE error END,
           worker = CASE WHEN cancel_requested THEN worker END, {_PROGRESS}
     {_MINE}
 RETURNING status
"""
# An ending rides on Procrastinate's acknowledgement of the same job, which runs only when
# the ending changed its row (one row of `ending`): no row back means the lease was lost.
ACK_FINISH = (
    "SELECT procrastinate_finish_job_v1(%(backend_id)s, %(end_status)s, %(delete_job)s) FROM ending"
)
# A retry whose ending cancelled the job ends Procrastinate's job too (aborted) instead.
ACK_RETRY = (
    "SELECT CASE WHEN ending.status = 'cancelled' "
    "THEN procrastinate_finish_job_v1(%(backend_id)s, 'aborted', false) "
    "ELSE procrastinate_retry_job_v2(%(backend_id)s, %(retry_at)s, %(new_priority)s, "
    "%(new_queue)s, %(new_lock)s) END, ending.status FROM ending"
)
SAVE_PROGRESS = "UPDATE interlink_jobs SET progress = %(progress)s " + _MINE + " RETURNING id"
# The running attempts of one worker, as the database has them: cancel requests, and
# whether each is still the worker's (`held`; false once its lease was lost).
HELD = """
    SELECT mine.id, mine.attempts, j.cancel_requested, j.status, j.worker,
           coalesce(j.status = 'running' AND j.worker = %(worker)s
                    AND j.attempts = mine.attempts, false) AS held
      FROM unnest(CAST(%(ids)s AS integer[]), CAST(%(attempts)s AS integer[]))
           AS mine(id, attempts)
      LEFT JOIN interlink_jobs AS j ON j.id = mine.id
"""
ASK_CANCEL = "UPDATE interlink_jobs SET cancel_requested = true " + _MINE + " RETURNING id"
STATE = "SELECT status, worker FROM interlink_jobs WHERE id = %(id)s"

# Recovery of a job whose worker was lost while it ran.
_WORKER_LOST = "its worker was lost (killed or its lease ran out)"
LOST = f"""
    UPDATE interlink_jobs
       SET status = CASE WHEN cancel_requested THEN 'cancelled'
                         WHEN attempts >= max_attempts THEN 'failed'
                         ELSE 'queued' END,
           finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts
                              THEN extract(epoch FROM now()) END,
           error = CASE
               WHEN cancel_requested THEN '{_WORKER_LOST} while it was being cancelled'
               WHEN attempts >= max_attempts THEN
                   '{_WORKER_LOST}; gave up after ' || attempts || ' attempts'
               ELSE '{_WORKER_LOST} during attempt ' || attempts
           END,
           run_at = extract(epoch FROM now()), worker = NULL
     WHERE id = %(id)s AND status = 'running'
 RETURNING status
"""
GIVE_UP = """
    UPDATE interlink_jobs SET status = 'failed', finished_at = extract(epoch FROM now()),
           error = 'gave up after ' || attempts || ' attempts'
     WHERE id = %(id)s AND status = 'queued'
"""
RECOVERY_LOCK = "hashtext('interlink.recover_stalled.' || coalesce(current_schema(), ''))"

# The planner's statistics of the two queue tables. Autovacuum refreshes them at most once
# a minute and only after 10% of a table changed; until then a burst into a fresh (or much
# smaller) queue looks like a few rows, and each claim sorts the whole backlog instead of
# reading the first entry of Procrastinate's priority index: a drain that slows as it goes.
# Workers re-analyze a table once it changed by half its size (at least 1,000 rows) since
# its last ANALYZE, one worker at a time, if their role owns it (ANALYZE would skip it).
STALE_STATISTICS = """
    SELECT s.schemaname::text AS schema, s.relname::text AS name
      FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid
     WHERE s.relid IN (to_regclass('procrastinate_jobs'), to_regclass('interlink_jobs'))
       AND s.n_mod_since_analyze > 1000 + 0.5 * greatest(c.reltuples, 0)
       AND pg_has_role(c.relowner, 'USAGE')
"""
STATISTICS_LOCK = "hashtext('interlink.analyze_queue.' || coalesce(current_schema(), ''))"


def job_from_row(row: Mapping[Any, Any]) -> Job:
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


def claimed_from_row(row: tuple[Any, ...], worker: str) -> tuple[pjobs.Job, Job | None]:
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
        started_at=row[24],
        worker=worker,
        cancel_requested=bool(row[21]),
        progress=row[22],
        result=row[23],
    )
    return claimed, job
