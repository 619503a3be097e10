"""Deliveries held while a connection they need is switched off, and released when it is on.

```python
pairs = needs(config, delivery.source, delivery.event_type)   # [(connection, account)]
if off_for(list_switches(store), pairs) and hold(store, delivery.id, pairs):
    ...                                              # `held`: not an attempt, no job
released = release_held(config, store, queue)        # the ids queued, oldest first
done, released = switch_on_releasing(config, store, queue, "shop")   # both in one call
```

The receiver stores every verified delivery, whatever the switches say: a sender such as
GitHub never sends a refused delivery again, and the others stop after a few days. What a
switch stops is the delivery's processing. A delivery needs its source's `connection:`,
and for a `run:` action the connections its pipeline runs through (its source's with the
pipeline's account, its destination resource's); while one of them is off, the delivery
is `held`, its `last_error` naming the switch, its attempt given back. A switch the action
itself runs into (ConnectionDisabledError: a handler's call, a record import for an
account) holds it the same way, and that switch is kept on the delivery (`result`
`held_by`) as one more it waits for. A delivery no action would act on (`ignore`, or no
action for its event type) is not held: it is settled `ignored` as ever.

Releasing queues each held delivery whose switches are all on again: `pending`, with a new
`webhook.process` job per BATCH_SIZE of a source. Switching on from the CLI, the API or
the dashboard releases at once (`switch_on_releasing`); every worker also releases twice a
minute (`release_held` as a chore of `run_worker`), which frees what a switch removed
another way (an account disconnected and connected again) and what a failed release left.

A hold and a switch-on never cross: `hold` first writes the delivery's row, which on
SQLite takes the file's write lock, and then reads every switch the delivery needs (`FOR
SHARE` on PostgreSQL, so switching one on waits for the hold to commit). Either the
switch-on committed first and the hold sees it on, or the hold commits first and every
release after the switch-on sees the delivery held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import Queue
from interlink.oauth import Switched, switch_on
from interlink.store import (
    Store,
    Switch,
    deliveries,
    disabled,
    finish_delivery,
    give_back_attempt,
    list_switches,
    requeue_delivery,
)

from ._actions import match_action
from ._job import BATCH_SIZE, batch_job

__all__ = [
    "HELD_BY",
    "RELEASE_CHUNK",
    "held_reason",
    "hold",
    "needs",
    "off_for",
    "release_chore",
    "release_held",
    "switch_on_releasing",
]

log = logging.getLogger("interlink.webhooks")

RELEASE_CHUNK = 1000
"""Held deliveries read at a time by `release_held`."""
HELD_BY = "held_by"
"""The key of a held delivery's `result` naming the switch its action ran into (one
`needs` cannot know of)."""

Pair = tuple[str, str]
"""(connection, account): account '' for the connection's own switch alone."""


def needs(config: InterlinkConfig, source: str, event_type: str | None) -> list[Pair]:
    """The (connection, account) pairs a delivery of `source` with `event_type` needs on,
    as the runs it makes check them: none when no action would act on it."""
    hook = config.webhooks.get(source)
    if hook is None:
        return []
    found = match_action(hook.actions, event_type)
    if found is None or found[1].ignore:
        return []
    action = found[1]
    used: list[Pair] = [(hook.connection, "")] if hook.connection else []
    pipeline = config.pipelines.get(action.run) if action.run is not None else None
    if pipeline is not None:
        account = pipeline.account if pipeline.account not in (None, "*") else ""
        used.append((pipeline.source.partition(".")[0], account or ""))
        if pipeline.destination.resource is not None:
            used.append((pipeline.destination.resource.partition(".")[0], ""))
    return list(dict.fromkeys(used))


def _held_by(config: InterlinkConfig, result: Any) -> Pair | None:
    """The switch a held delivery's action ran into (`HELD_BY`), while its connection is
    still in the config (one removed can never be switched on)."""
    by = result.get(HELD_BY) if isinstance(result, dict) else None
    if not isinstance(by, dict) or by.get("connection") not in config.connections:
        return None
    return str(by["connection"]), str(by.get("account") or "")


def off_for(switches: Sequence[Switch], pairs: Sequence[Pair]) -> Switch | None:
    """The first of `switches` (everything switched off) that stops one of `pairs`."""
    for connection, account in pairs:
        for switch in switches:
            if switch.connection == connection and switch.account in ("", account):
                return switch
    return None


def held_reason(switch: Switch) -> str:
    owner = f"connection {switch.connection!r}"
    if switch.account:
        owner += f", account {switch.account!r}"
    because = f" ({switch.reason})" if switch.reason else ""
    return f"held: {owner} is switched off{because}; it is processed once switched on"


def hold(
    store: Store, delivery: int, pairs: Sequence[Pair], *, ran_into: Pair | None = None
) -> Switch | None:
    """Leave `delivery` (just started, its attempt counted) `held` when one of the
    switches of `pairs` (and `ran_into`, the one its action met) is off; that switch, or
    None when all are on (process it). `ran_into` is kept on the delivery (`HELD_BY`)."""
    every = [*pairs, ran_into] if ran_into is not None and ran_into not in pairs else pairs
    with store.transaction() as conn:
        # The row first: on SQLite the write lock from here on (see the module docstring).
        found = conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == delivery)
            .values(status=deliveries.c.status)
        ).rowcount
        if not found:
            return None  # gone (deleted meanwhile): nothing to hold
        still = None
        for connection, account in every:
            still = disabled(conn, connection, account, locked=True)
            if still is not None:
                break
        if still is None:
            return None
        give_back_attempt(conn, delivery)
        # What an earlier hold kept (HELD_BY) goes: only what holds it now counts.
        result: dict[str, Any] = {}
        if ran_into is not None:
            result = {HELD_BY: {"connection": ran_into[0], "account": ran_into[1]}}
        finish_delivery(
            conn, delivery, "held", time.time(), result=result, error=held_reason(still)
        )
    return still


_HELD = (
    sa.select(
        deliveries.c.id,
        deliveries.c.source,
        deliveries.c.event_type,
        deliveries.c.result,
    )
    .where(deliveries.c.status == "held", deliveries.c.id > sa.bindparam("after"))
    .order_by(deliveries.c.id)
)


def release_held(config: InterlinkConfig, store: Store, queue: Queue) -> list[int]:
    """Queue every held delivery whose switches are all on again (see the module
    docstring); the ids released, oldest first. Held deliveries are read RELEASE_CHUNK
    at a time without a lock; only those to release are written, each only while it is
    still held (two releases at once never queue one twice)."""
    return _release_from(config, store, queue, chunks=None)[0]


def _release_from(
    config: InterlinkConfig, store: Store, queue: Queue, *, chunks: int | None
) -> tuple[list[int], bool]:
    """`release_held`, reading at most `chunks` RELEASE_CHUNKs; the ids released and
    whether every held delivery was looked at."""
    released: list[int] = []
    after, read = 0, 0
    while chunks is None or read < chunks:
        with store.engine.connect() as conn:
            rows = conn.execute(_HELD.limit(RELEASE_CHUNK), {"after": after}).all()
            switches = list_switches(conn)
        if not rows:
            return sorted(released), True
        read += 1
        after = int(rows[-1].id)
        free = [
            int(row.id)
            for row in rows
            if off_for(switches, _pairs(config, row.source, row.event_type, row.result)) is None
        ]
        if free:
            released.extend(_release(store, queue, free))
    return sorted(released), False


def _pairs(config: InterlinkConfig, source: str, event_type: str | None, result: Any) -> list[Pair]:
    pairs = needs(config, source, event_type)
    by = _held_by(config, result)
    return pairs + [by] if by is not None and by not in pairs else pairs


def _release(store: Store, queue: Queue, ids: list[int]) -> list[int]:
    """Queue the deliveries of `ids` that are still held, in one transaction."""
    with store.transaction() as conn:
        locked = conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id.in_(ids), deliveries.c.status == "held")
            .values(status=deliveries.c.status)
            .returning(deliveries.c.id, deliveries.c.source)
        ).all()
        by_source: dict[str, list[int]] = {}
        for row in sorted(locked, key=lambda row: int(row.id)):
            by_source.setdefault(row.source, []).append(int(row.id))
        chunks = [
            (source, found[start : start + BATCH_SIZE])
            for source, found in by_source.items()
            for start in range(0, len(found), BATCH_SIZE)
        ]
        jobs = queue.enqueue_many([batch_job(chunk, source) for source, chunk in chunks], conn)
        for (_, chunk), job in zip(chunks, jobs, strict=True):
            for delivery in chunk:
                requeue_delivery(conn, delivery, job)
    return [delivery for _, chunk in chunks for delivery in chunk]


CHORE_CHUNKS = 10
"""RELEASE_CHUNKs a worker's chore reads at most in one round (a worker stopping waits for
the round under way)."""


def release_chore(config: InterlinkConfig, store: Store, queue: Queue) -> Callable[[], object]:
    """`release_held` as a worker's chore (`run_worker(chores=...)`), logging what it
    queued. A round reads the switches first and looks no further when they are what
    they were after a round that went through every held delivery: what is held then
    waits for a switch still off."""
    last: list[list[Switch]] = []

    def release_held_deliveries() -> object:
        switches = list_switches(store)
        if last and last[0] == switches:
            return []
        released, whole = _release_from(config, store, queue, chunks=CHORE_CHUNKS)
        last[:] = [switches] if whole else []
        if released:
            log.info("queued %d held webhook deliveries: their connections are on", len(released))
        return released

    return release_held_deliveries


def switch_on_releasing(
    config: InterlinkConfig, store: Store, queue: Queue, connection: str, account: str = ""
) -> tuple[Switched, list[int]]:
    """Switch `connection` (or its `account`) on (`oauth.switch_on`), then queue the held
    deliveries nothing holds any more; what the switch did and the ids released. A
    release that fails (the switch is on by then) is logged and left to the workers'
    release, twice a minute."""
    done = switch_on(config, store, connection, account)
    try:
        return done, release_held(config, store, queue)
    except Exception as exc:
        log.warning(
            "held webhook deliveries were not queued after switching %s on (%s: %s); "
            "a running worker (interlink worker, interlink serve) queues them within a minute",
            connection,
            type(exc).__name__,
            exc,
        )
        return done, []
