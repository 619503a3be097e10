"""The INSERT and upsert statements of one destination table (`TableWriter`'s rows), as
SQL text built once for each set of columns and number of rows, and the batches run
through them.

A merge's upsert leaves a row whose values did not change untouched (`ON CONFLICT ... DO
UPDATE ... WHERE` a value differs), so the rows a statement reports are those inserted
or changed. On SQLite rows go `ROWS_PER_INSERT` to a statement (fewer when that many would
pass `SQLITE_MAX_MARKS` parameters); on PostgreSQL one row a statement, sent at once by
the driver's `executemany` (a large batch goes by COPY instead: `_pg_copy`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

from interlink.store import Connection

from ._column_kinds import ColumnKind

__all__ = ["ROWS_PER_INSERT", "SQLITE_MAX_MARKS", "InsertStatements"]

ROWS_PER_INSERT = 100
"""On SQLite, rows one INSERT carries (fewer when that many would pass SQLite's limit on
parameters)."""

SQLITE_MAX_MARKS = 32766
"""SQLite's most parameters in one statement (SQLITE_MAX_VARIABLE_NUMBER, since 3.32)."""


class InsertStatements:
    """The INSERT (an upsert by the key's columns when `upsert`) of table `table`.

    The statements are kept by columns and row count; call `forget` when the table's
    columns or their kinds change.
    """

    def __init__(
        self, table: str, dialect: str, quote: Callable[[str], str], *, upsert: bool
    ) -> None:
        self.table = table
        self.dialect = dialect
        self.quote = quote
        self.upsert = upsert
        self._statements: dict[tuple[int, tuple[str, ...]], str] = {}  # (rows, columns)

    def forget(self) -> None:
        """The table changed: build every statement again."""
        self._statements.clear()

    def _placeholder(self, kind: ColumnKind) -> str:
        mark = "?" if self.dialect == "sqlite" else "%s"
        if kind == "json" and self.dialect == "postgresql":
            return f"CAST({mark} AS JSONB)"
        return mark

    def statement(
        self,
        kinds: Mapping[str, ColumnKind],
        keys: Sequence[str],
        columns: tuple[str, ...],
        rows: int = 1,
    ) -> str:
        """The INSERT (or upsert) of `rows` rows of `columns` at once."""
        sql = self._statements.get((rows, columns))
        if sql is not None:
            return sql
        q = self.quote
        names = ", ".join(q(c) for c in columns)
        values = "(" + ", ".join(self._placeholder(kinds[c]) for c in columns) + ")"
        sql = f"INSERT INTO {q(self.table)} ({names}) VALUES {', '.join([values] * rows)}"
        if keys and self.upsert:
            sql += " " + self.upsert_tail(keys, columns)
        self._statements[(rows, columns)] = sql
        return sql

    def upsert_tail(self, keys: Sequence[str], columns: tuple[str, ...]) -> str:
        """The upsert's `ON CONFLICT` clause: rows whose values did not change are left
        alone (not counted as changed)."""
        q = self.quote
        table = q(self.table)
        key_list = ", ".join(q(k) for k in keys)
        others = [c for c in columns if c not in keys]
        if not others:
            return f"ON CONFLICT ({key_list}) DO NOTHING"
        assignments = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in others)
        distinct = " OR ".join(
            f"{table}.{q(c)} IS DISTINCT FROM excluded.{q(c)}"
            if self.dialect == "postgresql"
            else f"{table}.{q(c)} IS NOT excluded.{q(c)}"
            for c in others
        )
        return f"ON CONFLICT ({key_list}) DO UPDATE SET {assignments} WHERE {distinct}"

    def insert(
        self,
        conn: Connection,
        kinds: Mapping[str, ColumnKind],
        keys: Sequence[str],
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
    ) -> int:
        """Insert (or upsert) `rows`; returns the rows inserted or changed. On SQLite, rows
        go `ROWS_PER_INSERT` to a statement (one parse and one step for them all, about
        10% faster than a statement per row); the rest, and PostgreSQL's, one per row,
        sent at once by the driver."""
        per = min(ROWS_PER_INSERT, SQLITE_MAX_MARKS // len(columns))
        changed = 0
        start = 0
        if self.dialect == "sqlite" and per > 1:
            whole = len(rows) - len(rows) % per
            if whole:
                sql = self.statement(kinds, keys, columns, per)
                for start in range(0, whole, per):
                    chunk = tuple(chain.from_iterable(rows[start : start + per]))
                    changed += max(conn.exec_driver_sql(sql, chunk).rowcount, 0)
                start = whole
        if start < len(rows):
            rest = rows[start:] if start else rows
            sql = self.statement(kinds, keys, columns)
            changed += max(conn.exec_driver_sql(sql, rest).rowcount, 0)
        return changed
