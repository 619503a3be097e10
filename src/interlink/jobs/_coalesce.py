"""A pipeline run queued once, however many callers ask for it at the same moment.

```python
job_id, joined = enqueue_or_join(store, queue, "customers")   # joined: an existing run
```

A burst of webhook events for one pipeline, or a double click on the dashboard's "run
now", starts one run: a caller joins a queued run that has not started yet instead of
queueing another. The look-then-enqueue is serialised per pipeline across processes (an
advisory transaction lock on PostgreSQL, SQLite's write lock).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from interlink.store import Store, jobs

from ._model import PIPELINE_KIND, pipeline_job
from ._queue import Queue

__all__ = ["enqueue_or_join"]


_DUE = 1.0
"""Seconds ahead a queued run may be due and still be joined."""


def enqueue_or_join(store: Store, queue: Queue, pipeline: str) -> tuple[int, bool]:
    """A queued run of `pipeline` that has not started yet, or a new one: (job id, joined)."""
    with store.transaction() as conn:
        _hold_pipeline(conn, pipeline)
        # Only a fresh run: one never tried, due now, not being cancelled. A retry waiting
        # out its backoff (or handed back mid-read) may resume from a checkpoint past the
        # changed record, and may yet be cancelled or dead-lettered.
        waiting = conn.execute(
            sa.select(jobs.c.id)
            .where(
                jobs.c.kind == PIPELINE_KIND,
                jobs.c.pipeline == pipeline,
                jobs.c.status == "queued",
                jobs.c.attempts == 0,
                jobs.c.cancel_requested.is_(False),
                jobs.c.run_at <= time.time() + _DUE,
            )
            .order_by(jobs.c.id)
            .limit(1)
        ).scalar()
        if waiting is not None:
            return int(waiting), True
        return queue.enqueue(pipeline_job(pipeline), conn=conn).id, False


def _hold_pipeline(conn: sa.Connection, pipeline: str) -> None:
    """Serialise the look-then-enqueue of `enqueue_or_join` per pipeline, across processes."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"interlink:pipeline-run:{pipeline}"},
        )
    else:
        # A write first takes SQLite's write lock, and the reads after it see every commit.
        conn.execute(sa.text("UPDATE interlink_jobs SET id = id WHERE 0"))
