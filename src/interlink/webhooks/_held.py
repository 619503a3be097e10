"""Deliveries held while a connection they need is switched off, and released when it is on.

```python
switch = off_for(config, switches, source, event_type)   # Switch | None, before dispatch
if switch is not None and hold(store, delivery.id, switch):
    ...                                      # `held`: not an attempt, no retry
released = release_held(config, store, queue)   # after a switch-on: the ids queued
done, released = switch_on_releasing(config, store, queue, "shop")   # both in one call
```

The receiver stores every verified delivery, whatever the switches say: a sender such as
GitHub never sends a refused delivery again, and the others stop after a few days. What a
switch stops is the delivery's processing. A delivery needs its source's `connection:`,
and for a `run:` action the connections its pipeline runs through (with the pipeline's
account); while one of them is off, the delivery is `held`, its `last_error` naming the
switch, its attempt given back. A delivery no action would act on (`ignore`, or no action
for its event type) is not held: it is settled `ignored` as ever.

Switching on (`interlink connections enable`, `POST /connections/{name}/enable`, the
dashboard: `switch_on_releasing`) calls `release_held`: each held delivery whose
connections are all on again is `pending` with a new `webhook.process` job (one per
BATCH_SIZE of a source), in the same transaction. An account's switch that a record
import runs into (ConnectionDisabledError from the run) holds the delivery the same way.

A hold and a switch-on never cross: `hold` first writes the delivery's row, which on
SQLite takes the file's write lock, and then reads the switch again (`FOR SHARE` on
PostgreSQL, so switching on waits for the hold to commit). Either the switch-on came first
and the delivery is processed, or the release after it sees the delivery held.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import Queue, pipeline_connections
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
    "RELEASE_CHUNK",
    "held_reason",
    "hold",
    "needs",
    "off_for",
    "release_held",
    "switch_on_releasing",
]

RELEASE_CHUNK = 1000
"""Held deliveries looked at in one transaction of `release_held`."""
HELD_BY = "held_by"
"""The key of a held delivery's `result` naming the switch that held it: the one its
action ran into is not among those `needs` finds."""


def needs(config: InterlinkConfig, source: str, event_type: str | None) -> list[tuple[str, str]]:
    """The (connection, account) pairs a delivery of `source` with `event_type` needs on:
    none when no action would act on it."""
    hook = config.webhooks.get(source)
    if hook is None:
        return []
    found = match_action(hook.actions, event_type)
    if found is None or found[1].ignore:
        return []
    action = found[1]
    used = [(hook.connection, "")] if hook.connection else []
    if action.run is not None and action.run in config.pipelines:
        used.extend(pair for pair in pipeline_connections(config, action.run) if pair not in used)
    return used


def off_for(
    config: InterlinkConfig, switches: Sequence[Switch], source: str, event_type: str | None
) -> Switch | None:
    """The switch (of `switches`, everything switched off) that holds a delivery of
    `source` with `event_type`; None when nothing does."""
    if not switches:
        return None
    for connection, account in needs(config, source, event_type):
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


def hold(store: Store, delivery: int, switch: Switch) -> Switch | None:
    """Leave `delivery` (just started, its attempt counted) `held`, when `switch` is still
    off; the switch that holds it, or None when it is on again (process it)."""
    with store.transaction() as conn:
        # The row first: on SQLite the write lock from here on (see the module docstring).
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == delivery)
            .values(status=deliveries.c.status)
        )
        still = disabled(conn, switch.connection, switch.account, locked=True)
        if still is None:
            return None
        give_back_attempt(conn, delivery)
        by = {"connection": switch.connection, "account": switch.account}
        finish_delivery(
            conn, delivery, "held", time.time(), result={HELD_BY: by}, error=held_reason(still)
        )
    return still


def release_held(config: InterlinkConfig, store: Store, queue: Queue) -> list[int]:
    """Queue every held delivery whose connections are all on again (see the module
    docstring); the ids released, oldest first."""
    released: list[int] = []
    after = 0
    while True:
        with store.transaction() as conn:
            # Locked as they are read (the update changes nothing): two releases at once
            # never queue one delivery twice.
            found = conn.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.id.in_(
                        sa.select(deliveries.c.id)
                        .where(deliveries.c.status == "held", deliveries.c.id > after)
                        .order_by(deliveries.c.id)
                        .limit(RELEASE_CHUNK)
                        .scalar_subquery()
                    ),
                    deliveries.c.status == "held",
                )
                .values(status=deliveries.c.status)
                .returning(
                    deliveries.c.id,
                    deliveries.c.source,
                    deliveries.c.event_type,
                    deliveries.c.result,
                )
            )
            rows = sorted(found, key=lambda row: int(row.id))
            if not rows:
                return sorted(released)
            after = int(rows[-1].id)
            switches = list_switches(conn)
            by_source: dict[str, list[int]] = {}
            for row in rows:
                if off_for(config, switches, row.source, row.event_type) is None and not (
                    _holds(switches, row.result)
                ):
                    by_source.setdefault(row.source, []).append(int(row.id))
            chunks = [
                (source, ids[start : start + BATCH_SIZE])
                for source, ids in by_source.items()
                for start in range(0, len(ids), BATCH_SIZE)
            ]
            jobs = queue.enqueue_many([batch_job(ids, source) for source, ids in chunks], conn)
            for (_, ids), job in zip(chunks, jobs, strict=True):
                for delivery in ids:
                    requeue_delivery(conn, delivery, job)
                released.extend(ids)
        if len(rows) < RELEASE_CHUNK:
            return sorted(released)


def switch_on_releasing(
    config: InterlinkConfig, store: Store, queue: Queue, connection: str, account: str = ""
) -> tuple[Switched, list[int]]:
    """Switch `connection` (or its `account`) on (`oauth.switch_on`), then queue the held
    deliveries nothing holds any more; what the switch did and the ids released. A switch
    already on releases too: a release that failed is done by switching on again."""
    done = switch_on(config, store, connection, account)
    return done, release_held(config, store, queue)


def _holds(switches: Sequence[Switch], result: Any) -> bool:
    """Whether the switch a held delivery's `result` names (HELD_BY) is still off."""
    by = result.get(HELD_BY) if isinstance(result, dict) else None
    if not isinstance(by, dict):
        return False
    connection, account = by.get("connection"), by.get("account") or ""
    return any(s.connection == connection and s.account in ("", account) for s in switches)
