"""The PostgreSQL queue's job insert as a fragment another statement can end with.

`ProcrastinateQueue.enqueue_many` allocates ids, then inserts the jobs: two round trips
of its own. A caller that stores rows and queues the jobs that handle them (the webhook
inbox) can do both in one statement, and so in one round trip and one commit, by putting
`insert_jobs_from(...)` in a `WITH` clause after the rows' own insert:

```sql
WITH stored AS (INSERT INTO ... RETURNING ...),
     new_jobs(id, kind, args) AS (SELECT ... FROM stored ...),
     queued AS (<insert_jobs_from("new_jobs")>)
SELECT ... FROM stored
```

The relation named gives each job's `id` (taken from the jobs' id sequence, see
`JOB_ID`), `kind` and `args` (json); the rest are a job's defaults: priority 0, no lock,
no pipeline, no delay, `max_attempts` from the `:max_attempts` parameter. The rows it
writes are the rows `enqueue_many` writes (tests/webhooks/test_inbox_postgres.py compares
them), deferred to Procrastinate the same way.
"""

from __future__ import annotations

__all__ = ["JOB_ID", "insert_jobs_from", "queue_parameters"]

JOB_ID = "nextval(pg_get_serial_sequence('interlink_jobs', 'id'))"
"""The SQL expression of a new job id."""


def queue_parameters() -> dict[str, str]:
    """The values of `:queue` and `:task` the fragment names."""
    from ._procrastinate_sql import QUEUE_NAME, TASK_NAME

    return {"queue": QUEUE_NAME, "task": TASK_NAME}


def insert_jobs_from(relation: str) -> str:
    """An INSERT of one queued job per row of `relation` (id, kind, args)."""
    return f"""
    INSERT INTO interlink_jobs (id, kind, args, status, priority, attempts, max_attempts,
        lock, pipeline, run_at, created_at, cancel_requested, backend_id)
    SELECT new.id, new.kind, new.args, 'queued', 0, 0,
        CAST(:max_attempts AS integer), NULL, NULL,
        extract(epoch FROM new.at), extract(epoch FROM new.at), false,
        (procrastinate_defer_jobs_v1(ARRAY[ROW(
            CAST(:queue AS varchar), CAST(:task AS varchar), 0,
            NULL, NULL, jsonb_build_object('job_id', new.id), NULL
        )::procrastinate_job_to_defer_v1]))[1]
    FROM (SELECT r.id, r.kind, r.args, clock_timestamp() AS at FROM {relation} AS r) AS new
    """
