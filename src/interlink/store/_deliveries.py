"""The webhook inbox's rows: stored deliveries, their statuses, and refused deliveries.

```python
delivery = get_delivery(store.engine, 42)         # Delivery, body included
listed = list_deliveries(store.engine, DeliveryFilter(source="shop", status="failed"))
with store.transaction() as conn:
    start_delivery(conn, 42, now)                 # pending -> processing, attempts + 1
    finish_delivery(conn, 42, "processed", now, result={"run_job": 7})
```

The receiving side inserts in batches (`webhooks/_inbox.py`); everything else about a
delivery (the dispatcher's status changes, listings, replays) goes through here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from ._schema import DELIVERY_STATUSES, deliveries, rejections

__all__ = [
    "Delivery",
    "DeliveryFilter",
    "DeliveryStatus",
    "Rejection",
    "delivery_counts",
    "finish_delivery",
    "get_delivery",
    "give_back_attempt",
    "list_deliveries",
    "list_rejections",
    "requeue_delivery",
    "start_delivery",
]

DeliveryStatus = Literal["pending", "processing", "processed", "failed", "ignored", "held"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stored delivery. `body` is the raw bytes as signed (None in listings)."""

    id: int
    source: str
    delivery_id: str
    event_type: str | None
    status: DeliveryStatus
    received_at: float
    attempts: int
    last_error: str | None
    headers: dict[str, str]
    job_id: int | None
    result: dict[str, Any] | None
    processed_at: float | None
    body: bytes | None = None

    def to_dict(self, *, body: bool = False) -> dict[str, Any]:
        """The delivery as the API and `interlink webhooks show` give it; with `body`, the
        raw body as text when it is UTF-8 (`body`), else base64 (`body_base64`)."""
        shown: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "delivery_id": self.delivery_id,
            "event_type": self.event_type,
            "status": self.status,
            "received_at": self.received_at,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "job_id": self.job_id,
            "result": self.result,
            "processed_at": self.processed_at,
        }
        if body and self.body is not None:
            shown["headers"] = self.headers
            try:
                shown["body"] = self.body.decode("utf-8")
            except UnicodeDecodeError:
                shown["body_base64"] = base64.b64encode(self.body).decode("ascii")
        return shown


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which deliveries `list_deliveries` returns: newest first, `limit` at most, ids below
    `before` (the next page of a listing)."""

    source: str | None = None
    status: DeliveryStatus | None = None
    event_type: str | None = None
    limit: int = 50
    before: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 1000:
            raise ValueError(f"limit is 1..1000; got {self.limit}")
        if self.before is not None and self.before < 1:
            raise ValueError(f"before is a delivery id (1 or more); got {self.before}")
        if self.status is not None and self.status not in DELIVERY_STATUSES:
            raise ValueError(
                f"status is one of {', '.join(DELIVERY_STATUSES)}; got {self.status!r}"
            )


@dataclass(frozen=True, slots=True)
class Rejection:
    """A delivery refused before it was stored: why, and from where. Never its body."""

    id: int
    source: str
    reason: str
    status: int
    message: str
    address: str | None
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "reason": self.reason,
            "status": self.status,
            "message": self.message,
            "address": self.address,
            "received_at": self.received_at,
        }


_LISTED = [c for c in deliveries.c if c.name != "body"]


def _delivery(row: sa.RowMapping, *, body: bool) -> Delivery:
    return Delivery(
        id=int(row["id"]),
        source=row["source"],
        delivery_id=row["delivery_id"],
        event_type=row["event_type"],
        status=row["status"],
        received_at=float(row["received_at"]),
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        headers=dict(row["headers"] or {}),
        job_id=row["job_id"],
        result=row["result"],
        processed_at=row["processed_at"],
        body=bytes(row["body"]) if body else None,
    )


def get_delivery(bind: sa.Engine | sa.Connection, delivery: int) -> Delivery | None:
    """The stored delivery with row id `delivery`, body included; None when there is none."""
    query = sa.select(deliveries).where(deliveries.c.id == delivery)
    if isinstance(bind, sa.Connection):
        row = bind.execute(query).mappings().first()
    else:
        with bind.connect() as conn:
            row = conn.execute(query).mappings().first()
    return None if row is None else _delivery(row, body=True)


def list_deliveries(engine: sa.Engine, query: DeliveryFilter | None = None) -> list[Delivery]:
    """Stored deliveries, newest first, without their bodies."""
    query = query or DeliveryFilter()
    select = sa.select(*_LISTED).order_by(deliveries.c.id.desc()).limit(query.limit)
    if query.source is not None:
        select = select.where(deliveries.c.source == query.source)
    if query.status is not None:
        select = select.where(deliveries.c.status == query.status)
    if query.event_type is not None:
        select = select.where(deliveries.c.event_type == query.event_type)
    if query.before is not None:
        select = select.where(deliveries.c.id < query.before)
    with engine.connect() as conn:
        return [_delivery(row, body=False) for row in conn.execute(select).mappings()]


def delivery_counts(engine: sa.Engine, source: str | None = None) -> dict[str, int]:
    """How many deliveries are in each status (of one source, or of all)."""
    counts = dict.fromkeys(DELIVERY_STATUSES, 0)
    select = sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)
    if source is not None:
        select = select.where(deliveries.c.source == source)
    with engine.connect() as conn:
        for status, count in conn.execute(select):
            counts[status] = int(count)
    return counts


def start_delivery(
    conn: sa.Connection, delivery: int, now: float, *, job_id: int | None = None
) -> Delivery | None:
    """Mark a delivery `processing` and count the attempt; None when it is gone.

    The update comes first, so it holds the row's lock while the caller's transaction
    lasts (a replay at the same moment waits for it). A delivery already `processed` or
    `ignored` is returned unchanged: its job ran twice (at-least-once delivery), and the
    caller does nothing more. With `job_id`, so is a delivery handled by another job now
    (a replay made a newer one): the older job leaves it to that one.
    """
    update = (
        sa.update(deliveries)
        .where(
            deliveries.c.id == delivery,
            deliveries.c.status.not_in(("processed", "ignored")),
        )
        .values(status="processing", attempts=deliveries.c.attempts + 1)
    )
    if job_id is not None:
        update = update.where(sa.or_(deliveries.c.job_id.is_(None), deliveries.c.job_id == job_id))
    conn.execute(update)
    return get_delivery(conn, delivery)


def finish_delivery(
    conn: sa.Connection,
    delivery: int,
    status: DeliveryStatus,
    now: float,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record how an attempt ended: `processed`/`ignored` (done), `failed` (dead-lettered:
    no attempt is left or retrying cannot help), `pending` (a retry comes), or `held` (a
    connection it needs is switched off: it waits, unprocessed, to be switched on)."""
    values: dict[str, Any] = {"status": status, "last_error": error}
    if result is not None:
        values["result"] = result
    if status not in ("pending", "held"):
        values["processed_at"] = now
    conn.execute(sa.update(deliveries).where(deliveries.c.id == delivery).values(**values))


def give_back_attempt(conn: sa.Connection, delivery: int) -> None:
    """Uncount the attempt just started: it only waited (for its pipeline's lock)."""
    conn.execute(
        sa.update(deliveries)
        .where(deliveries.c.id == delivery, deliveries.c.attempts > 0)
        .values(attempts=deliveries.c.attempts - 1)
    )


def requeue_delivery(conn: sa.Connection, delivery: int, job_id: int) -> None:
    """A replay: the delivery is `pending` again, handled by the job `job_id`. Its attempts
    and last error stay, so the history of what went wrong is not lost."""
    conn.execute(
        sa.update(deliveries)
        .where(deliveries.c.id == delivery)
        .values(status="pending", job_id=job_id, processed_at=None)
    )


def list_rejections(
    engine: sa.Engine, source: str | None = None, *, limit: int = 50
) -> list[Rejection]:
    """Refused deliveries, newest first."""
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit is 1..1000; got {limit}")
    select = sa.select(rejections).order_by(rejections.c.id.desc()).limit(limit)
    if source is not None:
        select = select.where(rejections.c.source == source)
    with engine.connect() as conn:
        return [
            Rejection(
                id=int(row["id"]),
                source=row["source"],
                reason=row["reason"],
                status=int(row["status"]),
                message=row["message"],
                address=row["address"],
                received_at=float(row["received_at"]),
            )
            for row in conn.execute(select).mappings()
        ]
