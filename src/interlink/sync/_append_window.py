"""The records an incremental `append` read meets again, and their lookups in the table.

An incremental read of an `append` table starts AT its cursor, and the records it read
past its signpost come again too (`connectors._cursor`): a record with a value of the
incremental field from the cursor to the highest the read before saw may have been
appended by it, and is appended again only when the table has no identical row. The
lookups go through an index on the field's column (`_cursor_index`), made by the first
that looks: an append table keeps every version of every record, and a lookup reading
all of it made every run slower than the last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from interlink.connectors import MISSING, Record, compile_selector, cursor_key
from interlink.store import Connection, quoter

from ._column_kinds import as_text
from ._cursor_index import index_cursor_column
from ._table_writer import TableWriter

__all__ = ["AppendWindow"]


class AppendWindow:
    """The window of one read: which records of a page to look up, and the lookups."""

    def __init__(self, table: str, dialect: str, field: str, low: Any, high: Any) -> None:
        self.table = table
        self.dialect = dialect
        self.field = field
        self._select = compile_selector(field)
        self._low = low
        self._high = high
        self._indexed = False
        self.notes: list[str] = []
        """Why the lookups read the whole table, if they do (for the run's warnings)."""

    @classmethod
    def of(
        cls, table: str, dialect: str, field: str | None, since: Any, upto: Any
    ) -> AppendWindow | None:
        """The window of a read of `field` from cursor `since` to `upto` (the highest
        value the read before saw); None when there is none."""
        if field is None or (since is None and upto is None):
            return None
        try:
            low = None if since is None else cursor_key(since)
            high = low if upto is None else cursor_key(upto)
            if low is not None and high is not None and not high > low:
                high = low
        except (ValueError, TypeError):
            # Not comparable with the cursor (the field changed kind): its instant alone.
            low = high = None if since is None else cursor_key(since)
        if high is None:
            return None
        # No cursor (the last read held every value back): all up to what it saw.
        return cls(table, dialect, field, low, high)

    def within(self, items: list[tuple[Record, Record]]) -> set[int]:
        """The ids of the mapped records whose source value lies in the window."""
        low, high = self._low, self._high
        found: set[int] = set()
        for record, mapped in items:
            value = self._select(record)
            if value is None or value is MISSING:
                continue
            try:
                key = cursor_key(value)
                if (low is None or low <= key) and key <= high:
                    found.add(id(mapped))
            except (ValueError, TypeError):
                continue  # the read itself refuses such values
        return found

    def held(
        self,
        conn: Connection,
        reader: TableWriter,
        records: list[Record],
        index_name: Callable[[str], str],
    ) -> list[Record]:
        """Those of `records` the table (`reader`'s) holds a row equal to in each field:
        the same records, appended by an earlier read. A value that compares unequal only
        by its spelling (a number written otherwise) appends the record again, never drops
        it. The first call indexes the field's column, named `index_name(column)`."""
        if not records:
            return []
        reader.prepare(conn, [])
        if not self._indexed:
            self._indexed = True
            self._index(conn, reader, index_name)
        return [r for r in records if self._has_row(conn, reader, r)]

    def _index(self, conn: Connection, reader: TableWriter, name: Callable[[str], str]) -> None:
        """Index the column of the incremental field. A field the mapping renames (or a
        dotted path) has no column of its name, and one whose lookups compare otherwise
        (a date or JSON column) no index could serve: the lookups read the table."""
        column = reader.column_of(self.field)
        if column is None or not reader.compared_as_is(column):
            return
        why = index_cursor_column(conn, self.table, column, name(column))
        if why is not None:
            self.notes.append(
                f"table {self.table}: could not index {column} ({why}), so each lookup of "
                "a record read again reads the whole table; index it yourself, or let "
                "interlink's role own the table"
            )

    def _has_row(self, conn: Connection, reader: TableWriter, record: Record) -> bool:
        columns = reader.columns or {}
        if not columns:
            return False
        q = quoter(self.dialect)
        mark = "?" if self.dialect == "sqlite" else "%s"
        where: list[str] = []
        params: list[Any] = []
        written: set[str] = set()
        for field, value in record.items():
            column = reader.column_of(field)
            if column is None:
                return False  # a field the table has no column for: not appended yet
            kind = columns[column]
            written.add(column)
            if value is None:
                where.append(f"{q(column)} IS NULL")
            elif kind == "json":
                # Compared as JSON values, whatever spacing the stored text has.
                if self.dialect == "sqlite":
                    where.append(f"json({q(column)}) = json({mark})")
                else:
                    where.append(f"{q(column)} = CAST({mark} AS JSONB)")
                params.append(orjson.dumps(value, default=str).decode())
            elif type(value) is str and reader.holds_plain_text(column):
                where.append(f"{q(column)} = {mark}")  # an index on the column answers it
                params.append(value)
            elif kind == "text" or isinstance(value, dict | list | str):
                where.append(f"CAST({q(column)} AS TEXT) = {mark}")
                params.append(as_text(value))
            else:
                where.append(f"{q(column)} = {mark}")
                params.append(value)
        # A field the record no longer has is null in the row it would append.
        where.extend(f"{q(column)} IS NULL" for column in columns if column not in written)
        sql = f"SELECT 1 FROM {q(self.table)} WHERE {' AND '.join(where) or '1 = 1'} LIMIT 1"
        return conn.exec_driver_sql(sql, tuple(params)).first() is not None
