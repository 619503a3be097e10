"""Whether a connection is switched off, as the webhook receiver asks it: at most one
database read per connection per second, however many deliveries arrive.

```python
switches = SwitchCache(store.engine)          # max_age=1.0
off = await switches.off("crm")               # Switch | None, at most 1 s old
```

The receiver takes thousands of deliveries a second; reading `interlink_connection_switches`
for each would cost more than storing them. A switch flipped by `interlink connections
disable` therefore takes effect here within `max_age` seconds. Concurrent requests that
find the answer stale share one read (per event loop), done in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from interlink.store import Switch, disabled

__all__ = ["MAX_AGE", "SwitchCache"]

log = logging.getLogger("interlink.webhooks")

MAX_AGE = 1.0
"""Seconds a connection's switch is taken from the cache before it is read again."""


@dataclass(slots=True)
class _Entry:
    switch: Switch | None
    read_at: float


class SwitchCache:
    """The connection-wide switch of each connection asked about, read at most once per
    `max_age` seconds."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.max_age = max_age
        self.clock = clock
        self.reads = 0
        """Database reads made, for tests and the benchmark."""
        self._entries: dict[str, _Entry] = {}
        self._reading: dict[str, asyncio.Task[Switch | None]] = {}

    async def off(self, connection: str) -> Switch | None:
        """The connection's own switch-off (None: it is on), at most `max_age` old."""
        entry = self._entries.get(connection)
        if entry is not None and self.clock() - entry.read_at < self.max_age:
            return entry.switch
        task = self._reading.get(connection)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            # A task of its own: a request that goes away does not cancel the others' read.
            task = asyncio.ensure_future(self._refresh(connection))
            self._reading[connection] = task
        return await asyncio.shield(task)

    async def _refresh(self, connection: str) -> Switch | None:
        started = self.clock()
        switch = await asyncio.to_thread(self._read, connection)
        before = self._entries.get(connection)
        if (before.switch if before is not None else None) is None and switch is not None:
            log.info("connection %s is switched off: its webhook deliveries get 503", connection)
        elif before is not None and before.switch is not None and switch is None:
            log.info("connection %s is switched on: its webhook deliveries are taken", connection)
        self._entries[connection] = _Entry(switch, started)
        return switch

    def _read(self, connection: str) -> Switch | None:
        self.reads += 1
        return disabled(self.engine, connection)
