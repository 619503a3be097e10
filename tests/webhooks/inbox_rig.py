"""What the tests of the inbox's writer process share: arrivals, a SQLite file with its
queue (the `opened` fixture in conftest.py), the rows stored, a started writer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import open_queue
from interlink.store import Store, deliveries
from interlink.webhooks import Arrival, ProcessInbox


def arrival(
    n: int | str, *, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Arrival:
    """Delivery `d{n}` of source `shop`: a small JSON body unless `body` is given."""
    body = body if body is not None else f'{{"id":"evt_{n}","type":"t"}}'.encode()
    headers = headers if headers is not None else {"webhook-id": f"d{n}"}
    return Arrival("shop", f"d{n}", "order.updated", time.time(), body, headers)


def open_database(tmp_path: Path) -> tuple[InterlinkConfig, Store, Any]:
    """A config on a SQLite file in `tmp_path`, its store and its queue."""
    config = InterlinkConfig.model_validate({"database": f"sqlite:///{tmp_path / 'hooks.db'}"})
    store = Store.open(config.database)
    return config, store, open_queue(config, store)


def stored(store: Store) -> dict[str, tuple[int, int | None]]:
    """The stored deliveries: delivery id -> (row id, job id)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries.c.delivery_id, deliveries.c.id, deliveries.c.job_id)
        )
        return {r.delivery_id: (r.id, r.job_id) for r in rows}


async def started(inbox: ProcessInbox) -> int:
    """Store delivery `dwarm` (which starts the writer process); the writer's pid."""
    await inbox.accept(arrival("warm"), timeout=30)
    pid = inbox.pid
    assert pid is not None
    return pid
