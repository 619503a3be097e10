"""`open_queue`: the queue backend for the configured database."""

from __future__ import annotations

from interlink.config import InterlinkConfig
from interlink.store import Store

from ._queue import Queue

__all__ = ["open_queue"]


def open_queue(config: InterlinkConfig, store: Store) -> Queue:
    """The embedded SQLite queue for `sqlite:` databases, Procrastinate for PostgreSQL."""
    if config.database.backend == "sqlite":
        from ._sqlite_queue import SqliteQueue

        return SqliteQueue(store, config)
    from ._procrastinate import ProcrastinateQueue

    return ProcrastinateQueue(store, config)
