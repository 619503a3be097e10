"""Replaying stored deliveries: each is `pending` again, handled by a new `webhook.process` job.

```python
delivery = replay(store, queue, 42, config=config)        # delivery.job_id: the new job
replayed = replay_failed(store, queue, source="billing")   # [ids], oldest first
```

The job and the delivery's new status are written in one transaction (the queue's
`enqueue(conn=...)`): either both are there or neither is. A delivery `processing` right
now is not replayed (its job is still at it; unless that job is gone, dead-lettered after
its worker was lost); every other status is, `processed` and
`ignored` included, for when you changed what an event type does. The replayed delivery
keeps its attempts and last error, so what went wrong before is not lost.

Rows are locked before they are read: an update that changes nothing takes SQLite's write
lock, and on PostgreSQL the row locks of exactly the rows it touched, so two replays at
once never queue a delivery twice and a dispatcher starting it cannot slip in between.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.errors import WebhookError
from interlink.jobs import Queue
from interlink.store import Delivery, Store, deliveries, get_delivery, jobs, requeue_delivery

from ._job import process_job

__all__ = ["MAX_REPLAY", "replay", "replay_failed"]

MAX_REPLAY = 1000
"""The most deliveries one `replay_failed` requeues; call it again for the rest."""


def _abandoned() -> sa.ColumnElement[bool]:
    """A `pending` or `processing` delivery whose job is no longer queued or running: its
    worker was lost on the job's last attempt (the queue dead-lettered the job without
    running it), or the job was cancelled, so nothing will ever finish it. It may be
    replayed, as a `failed` one may."""
    live = sa.exists().where(
        jobs.c.id == deliveries.c.job_id, jobs.c.status.in_(("queued", "running"))
    )
    return sa.and_(deliveries.c.status.in_(("pending", "processing")), ~live)


def _max_attempts(config: InterlinkConfig | None, source: str) -> int | None:
    hook = config.webhooks.get(source) if config is not None else None
    return hook.max_attempts if hook is not None else None


def _lock(conn: sa.Connection, *where: sa.ColumnElement[bool]) -> list[tuple[int, str]]:
    """Lock the deliveries matching `where` for this transaction; their ids and sources."""
    touched = conn.execute(
        sa.update(deliveries)
        .where(*where)
        .values(status=deliveries.c.status)
        .returning(deliveries.c.id, deliveries.c.source)
    )
    return sorted((int(row.id), str(row.source)) for row in touched)


def _requeue(
    conn: sa.Connection, queue: Queue, config: InterlinkConfig | None, delivery: int, source: str
) -> None:
    job = queue.enqueue(
        process_job(delivery, source, max_attempts=_max_attempts(config, source)), conn=conn
    )
    requeue_delivery(conn, delivery, job.id)


def replay(
    store: Store, queue: Queue, delivery: int, *, config: InterlinkConfig | None = None
) -> Delivery:
    """Process the stored delivery with row id `delivery` again, with a new job.

    Returns the delivery as it is now (`pending`, `job_id` the new job). `config` gives the
    source's `max_attempts` (without it, the queue's `jobs.max_attempts`). Raises
    `LookupError` when there is no such delivery, and `WebhookError` when it is being
    processed right now (replay it once that attempt has ended).
    """
    with store.transaction() as conn:
        locked = _lock(
            conn,
            deliveries.c.id == delivery,
            sa.or_(deliveries.c.status != "processing", _abandoned()),
        )
        if not locked:
            found = get_delivery(conn, delivery)
            if found is None:
                raise LookupError(f"no webhook delivery with id {delivery}")
            raise WebhookError(
                f"webhook delivery {delivery} is being processed right now (job "
                f"{found.job_id}); replay it once that attempt has ended"
            )
        _requeue(conn, queue, config, delivery, locked[0][1])
        replayed = get_delivery(conn, delivery)
    assert replayed is not None
    return replayed


def replay_failed(
    store: Store,
    queue: Queue,
    *,
    source: str | None = None,
    limit: int = MAX_REPLAY,
    config: InterlinkConfig | None = None,
) -> list[int]:
    """Process every `failed` (dead-lettered) delivery again (and every one left
    `processing` by a job that is gone: `_abandoned`), of one `source` or of all,
    oldest first and `limit` at most, in one transaction. Returns the ids replayed (empty
    when none had failed)."""
    if not 1 <= limit <= MAX_REPLAY:
        raise ValueError(f"limit is 1..{MAX_REPLAY}; got {limit}")
    failed: list[sa.ColumnElement[bool]] = [sa.or_(deliveries.c.status == "failed", _abandoned())]
    if source is not None:
        failed.append(deliveries.c.source == source)
    chosen = sa.select(deliveries.c.id).where(*failed).order_by(deliveries.c.id).limit(limit)
    with store.transaction() as conn:
        # The status is checked again on the locked rows: one that left `failed` while
        # this waited for its lock (another replay) is skipped.
        locked: Sequence[tuple[int, str]] = _lock(
            conn, deliveries.c.id.in_(chosen.scalar_subquery()), *failed
        )
        for delivery, found_source in locked:
            _requeue(conn, queue, config, delivery, found_source)
    return [delivery for delivery, _ in locked]
