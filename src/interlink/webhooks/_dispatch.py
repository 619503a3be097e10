"""The `webhook.process` job: one stored delivery -> its source's action for its event type.

```
pending --(job starts)--> processing --> processed   the action did its work
                                    |--> ignored     `ignore`, or no action matched
                                    |--> pending     it failed; the job is retried later
                                    |--> failed      it failed for good (dead-lettered)
                                    '--> held        a connection it needs is switched
                                                     off: queued again once it is on
                                                     (webhooks/_held.py)
```

Actions:
- `run: PIPELINE`: queue a run of the pipeline, unless a fresh one (never tried, due now,
  not being cancelled) is already queued: that run reads the change too, so a burst of
  events makes one run. The check
  and the enqueue hold a lock per pipeline (an advisory lock on PostgreSQL, the write lock
  on SQLite), so two workers cannot both queue one.
- `record: PATH` with `run: PIPELINE`: fetch the record whose id is at PATH in the payload
  fresh from the pipeline's source and write it through the pipeline (`sync.run_records`).
- `handler: module:function`: call it with the `WebhookEvent` (sync functions in a thread).
- `ignore`.

Every action runs at least once per delivery: after a crash the job runs again. The
built-in ones are idempotent (a queued run is shared, a record import is an upsert); a
delivery already `processed` or `ignored` is not processed again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import random
import time
from typing import Any

from interlink.config import InterlinkConfig, WebhookActionConfig
from interlink.errors import (
    ConfigError,
    ConnectionDisabledError,
    JobCancelledError,
    PipelineLockedError,
)
from interlink.jobs import (
    JobContext,
    JobKinds,
    Queue,
    enqueue_or_join,
    final_attempt,
    retry_delay,
)
from interlink.oauth import open_catalog
from interlink.store import (
    Delivery,
    Store,
    finish_delivery,
    give_back_attempt,
    list_switches,
    requeue_delivery,
    start_delivery,
)
from interlink.sync import run_records

from ._actions import WebhookEvent, load_handler, match_action, value_at
from ._held import hold, needs, off_for
from ._job import PROCESS_KIND, process_job
from ._repeat_window import event_delivery_id

__all__ = ["DeliveryFailed", "job_kinds", "process_delivery"]

log = logging.getLogger("interlink.webhooks")


class DeliveryFailed(RuntimeError):
    """An action did not do its work (a record import that did not succeed)."""


def job_kinds() -> JobKinds:
    """The built-in job kinds and `webhook.process`: what a worker of interlink runs."""
    kinds = JobKinds.default()
    kinds.register(PROCESS_KIND, process_delivery)
    return kinds


async def process_delivery(context: JobContext) -> dict[str, Any]:
    """Run the action of the delivery the job names, recording each step on the delivery."""
    store = context.services.get("store")
    queue = context.services.get("queue")
    if not isinstance(store, Store) or queue is None:
        raise RuntimeError("the worker gives jobs its Store and Queue as services")
    if "deliveries" in context.job.args:
        return await _process_batch(context, store, queue)
    row_id = int(context.job.args["delivery"])
    job_id = context.job.id
    delivery = await asyncio.to_thread(_start, store, row_id, job_id)
    if delivery is None:
        return {"skipped": "the delivery is gone"}
    if delivery.status in ("processed", "ignored"):
        return {"skipped": f"already {delivery.status}"}
    if delivery.job_id is not None and delivery.job_id != job_id:
        return {"skipped": f"handled by job {delivery.job_id} now (a replay)"}
    if await _held(context.config, store, delivery):
        return {"delivery": row_id, "status": "held"}
    try:
        try:
            status, result = await _dispatch(context.config, store, queue, delivery)
        except ConnectionDisabledError as exc:
            if await _held_by(context.config, store, delivery, exc):
                return {"delivery": row_id, "status": "held"}
            raise _SwitchedOnMeanwhile(exc) from exc
    except BaseException as exc:
        final = final_attempt(context.job, exc)
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await asyncio.to_thread(
            _finish,
            store,
            row_id,
            "failed" if final else "pending",
            error=error,
            waited=isinstance(exc, PipelineLockedError),
        )
        raise
    await asyncio.to_thread(_finish, store, row_id, status, result=result)
    return {"delivery": row_id, "status": status, **result}


async def _process_batch(context: JobContext, store: Store, queue: Queue) -> dict[str, Any]:
    """The deliveries of one commit, one after the other. One whose action fails is split
    off: a job of its own retries it with backoff (or it is `failed` at once when no
    attempt is left or retrying cannot help), and the others go on."""
    counts: dict[str, int] = {}
    job_id = context.job.id
    for row_id in (int(i) for i in context.job.args["deliveries"]):
        delivery = await asyncio.to_thread(_start, store, row_id, job_id)
        if (
            delivery is None
            or delivery.status in ("processed", "ignored")
            or (delivery.job_id is not None and delivery.job_id != job_id)
        ):
            counts["skipped"] = counts.get("skipped", 0) + 1
            continue
        if await _held(context.config, store, delivery):
            counts["held"] = counts.get("held", 0) + 1
            continue
        try:
            status, result = await _dispatch(context.config, store, queue, delivery)
        except JobCancelledError:
            await asyncio.to_thread(_finish, store, row_id, "pending", error="cancelled")
            raise
        except ConnectionDisabledError as exc:
            if await _held_by(context.config, store, delivery, exc):
                status = "held"
            else:
                again = _SwitchedOnMeanwhile(exc)
                status = await asyncio.to_thread(_split_off, context, store, queue, delivery, again)
        except Exception as exc:
            status = await asyncio.to_thread(_split_off, context, store, queue, delivery, exc)
        else:
            await asyncio.to_thread(_finish, store, row_id, status, result=result)
        counts[status] = counts.get(status, 0) + 1
    return {"deliveries": len(context.job.args["deliveries"]), **counts}


class _SwitchedOnMeanwhile(RuntimeError):
    """The action ran into a switch that was on again by the time the delivery was to be
    held: an attempt like any failed one, retried with backoff."""

    def __init__(self, refused: ConnectionDisabledError) -> None:
        super().__init__(f"{refused} (it was on again when the delivery was to be held)")


async def _held(config: InterlinkConfig, store: Store, delivery: Delivery) -> bool:
    """Whether `delivery` is left `held`: a connection it needs is switched off (read for
    each delivery: a batch takes long enough for a switch to change meanwhile)."""
    pairs = needs(config, delivery.source, delivery.event_type)
    if not pairs or off_for(await asyncio.to_thread(list_switches, store), pairs) is None:
        return False
    return await asyncio.to_thread(hold, store, delivery.id, pairs) is not None


async def _held_by(
    config: InterlinkConfig, store: Store, delivery: Delivery, exc: ConnectionDisabledError
) -> bool:
    """Whether `delivery` is left `held` by the switch its action ran into (or another
    it needs, switched off meanwhile)."""
    pairs = needs(config, delivery.source, delivery.event_type)
    ran_into = (exc.connection, exc.account)
    return await asyncio.to_thread(hold, store, delivery.id, pairs, ran_into=ran_into) is not None


_LOCK_WAIT = 5.0
"""At most this many seconds before a delivery waiting for its pipeline's lock tries again."""


def _split_off(
    context: JobContext, store: Store, queue: Queue, delivery: Delivery, exc: Exception
) -> str:
    """After a failed attempt at one delivery of a batch: `failed` when it was its last
    (by the source's max_attempts) or trying again cannot help, else a job of its own
    after the queue's backoff; the status it is left in."""
    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    source = context.config.webhooks.get(delivery.source)
    limit = (source.max_attempts if source else None) or context.config.jobs.max_attempts
    as_job = dataclasses.replace(context.job, attempts=delivery.attempts, max_attempts=limit)
    now = time.time()
    settings = context.config.jobs
    left = limit - delivery.attempts
    delay = retry_delay(
        delivery.attempts,
        base=settings.retry_delay,
        cap=settings.retry_max_delay,
        jitter=random.random(),
    )
    with store.transaction() as conn:
        if isinstance(exc, PipelineLockedError):
            # A run holds the pipeline: waiting for it is not an attempt (as for jobs).
            give_back_attempt(conn, delivery.id)
            left, delay = left + 1, min(settings.retry_delay, _LOCK_WAIT)
        elif final_attempt(as_job, exc):
            finish_delivery(conn, delivery.id, "failed", now, error=error)
            return "failed"
        spec = process_job(delivery.id, delivery.source, max_attempts=left, delay=delay)
        job = queue.enqueue(spec, conn=conn)
        requeue_delivery(conn, delivery.id, job.id)
        finish_delivery(conn, delivery.id, "pending", now, error=error)
    log.info("webhook delivery %s failed, retried by job %s: %s", delivery.id, job.id, error)
    return "pending"


def _start(store: Store, row_id: int, job_id: int) -> Delivery | None:
    with store.transaction() as conn:
        return start_delivery(conn, row_id, time.time(), job_id=job_id)


def _finish(
    store: Store,
    row_id: int,
    status: Any,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    waited: bool = False,
) -> None:
    with store.transaction() as conn:
        if waited:  # the queue gives a wait for the pipeline's lock back: so does the count
            give_back_attempt(conn, row_id)
        finish_delivery(conn, row_id, status, time.time(), result=result, error=error)


async def _dispatch(
    config: InterlinkConfig, store: Store, queue: Queue, delivery: Delivery
) -> tuple[str, dict[str, Any]]:
    source = config.webhooks.get(delivery.source)
    if source is None:
        # The source left interlink.yaml after the delivery was stored: keep it, do nothing.
        return "ignored", {"reason": f"no webhook source named {delivery.source!r} any more"}
    found = match_action(source.actions, delivery.event_type)
    if found is None:
        return "ignored", {"reason": f"no action for event type {delivery.event_type!r}"}
    pattern, action = found
    where = f"webhooks.{delivery.source}.actions.{pattern}"
    if action.ignore:
        return "ignored", {"action": "ignore", "matched": pattern}
    if action.handler is not None:
        outcome = await _call_handler(action.handler, delivery, where=f"{where}.handler")
        return "processed", {"action": "handler", "matched": pattern, "returned": outcome}
    assert action.run is not None
    if action.record is not None:
        return "processed", await _import_record(config, store, delivery, action, pattern)
    job_id, joined = await asyncio.to_thread(enqueue_or_join, store, queue, action.run)
    return "processed", {
        "action": "run",
        "matched": pattern,
        "pipeline": action.run,
        "job_id": job_id,
        "coalesced": joined,
    }


def _event(delivery: Delivery) -> WebhookEvent:
    return WebhookEvent.parse(
        id=delivery.id,
        source=delivery.source,
        delivery_id=event_delivery_id(delivery.delivery_id, delivery.body or b"", delivery.id),
        event_type=delivery.event_type,
        received_at=delivery.received_at,
        attempt=delivery.attempts,
        headers=delivery.headers,
        body=delivery.body or b"",
    )


async def _call_handler(path: str, delivery: Delivery, *, where: str) -> Any:
    handler = load_handler(path, where=where)
    event = _event(delivery)
    if inspect.iscoroutinefunction(handler):
        returned = await handler(event)
    else:
        returned = await asyncio.to_thread(handler, event)
        if inspect.isawaitable(returned):
            returned = await returned
    # What a handler returns is kept on the delivery when it is plain JSON.
    return returned if isinstance(returned, dict | list | str | int | float | bool) else None


async def _import_record(
    config: InterlinkConfig,
    store: Store,
    delivery: Delivery,
    action: WebhookActionConfig,
    pattern: str,
) -> dict[str, Any]:
    assert action.run is not None and action.record is not None
    event = _event(delivery)
    record_id = value_at(event.payload, action.record)
    if not isinstance(record_id, str | int) or isinstance(record_id, bool):
        # The payload will not change on a retry: a ConfigError fails the job at once.
        raise ConfigError(
            f"the delivery's body has no record id at {action.record!r}",
            key=f"webhooks.{delivery.source}.actions.{pattern}.record",
        )
    # The pipeline's own account: its catalog is opened by the run, for that account.
    result = await run_records(
        config,
        action.run,
        [record_id],
        store=store,
        catalogs=lambda accounts: open_catalog(config, store, accounts=accounts),
    )
    shown = {
        "action": "record",
        "matched": pattern,
        "pipeline": action.run,
        "record_id": record_id,
        "run_id": result.run_id,
        "run_status": result.status,
    }
    if result.status != "succeeded":
        first = result.errors[0] if result.errors else {}
        raise DeliveryFailed(
            f"importing record {record_id!r} through {action.run!r} ended {result.status} "
            f"(run {result.run_id}): {first.get('error', 'see interlink runs')}"
        )
    return shown
