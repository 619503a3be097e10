"""The SQL table destination: records into a table of the configured database."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

import sqlalchemy as sa

from interlink.store import Store, TableWriter, WriteCounts

__all__ = ["SqlSink"]


class SqlSink:
    """Writes each batch into `table` inside the caller's transaction.

    The table is created from the first records and grows a column for every new field,
    each one recorded in `interlink_schema_changes`.
    """

    def __init__(
        self,
        store: Store,
        table: str,
        *,
        primary_key: Sequence[str],
        mode: str,
    ) -> None:
        self.store = store
        self.table = table
        self.primary_key = list(primary_key)
        self.mode = mode
        self._keyed = mode != "append"
        self._single_key = (
            self.primary_key[0] if self._keyed and len(self.primary_key) == 1 else None
        )
        self.writer = TableWriter(
            store.engine,
            table,
            primary_key=self.primary_key if mode != "append" else (),
            mode="append" if mode == "append" else "merge",
        )

    def keyless(self, record: dict[str, Any]) -> bool:
        """True when a merge could not place this record (a key field is missing)."""
        # Runs once per record: the usual single key is one lookup, no generator.
        if self._single_key is not None:
            return record.get(self._single_key) is None
        return self._keyed and any(record.get(k) is None for k in self.primary_key)

    def any_keyless(self, records: Sequence[dict[str, Any]]) -> bool:
        """True when some record of the batch lacks a key field (one C-level pass)."""
        if not self._keyed:
            return False
        try:
            if self._single_key is not None:
                return None in map(dict.get, records, repeat(self._single_key))
            return any(map(self.keyless, records))
        except (TypeError, AttributeError):  # a record that is not an object: the slow path
            return True

    def truncate(self, conn: sa.Connection) -> None:
        self.writer.truncate(conn)

    def write(
        self, conn: sa.Connection, records: Sequence[dict[str, Any]], *, run_id: int
    ) -> WriteCounts:
        for column, kind in self.writer.prepare(conn, records):
            self.store.record_schema_change(conn, self.table, column, kind, run_id)
        return self.writer.write(conn, records)
