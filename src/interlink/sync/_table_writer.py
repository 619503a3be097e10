"""Write records into a table of their own: created from the records, grown as they grow.

Top-level scalars become typed columns (bool, BIGINT, DOUBLE, TEXT), nested objects and
arrays JSON columns (JSONB on PostgreSQL). A field that appears later adds a column. On
SQLite a single integer primary key is declared INTEGER, which makes it the table's rowid.
Rows go in with the driver's `executemany` (SQLAlchemy builds the DDL and knows the
dialects; the rows themselves skip its per-row machinery, which would cost more than the
write).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = ["ColumnKind", "TableWriter", "WriteCounts", "infer_kind"]

ColumnKind = Literal["boolean", "integer", "float", "text", "json"]
WriteMode = Literal["append", "replace", "merge"]

_TYPES: dict[str, Any] = {
    "boolean": sa.Boolean(),
    "integer": sa.BigInteger(),
    "float": sa.Float(precision=53),
    "text": sa.Text(),
    # JSONB on PostgreSQL: plain JSON there has no equality, which the upsert compares.
    "json": sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
}


def infer_kind(value: Any) -> ColumnKind | None:
    """The column kind of one value; None for None (it says nothing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict | list):
        return "json"
    return "text"


def _widen(a: ColumnKind | None, b: ColumnKind | None) -> ColumnKind | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    if {a, b} == {"integer", "float"}:
        return "float"
    return "text"


@dataclass
class WriteCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class TableWriter:
    """Creates, grows and fills one destination table; every call takes the caller's
    connection, so the rows commit together with whatever else the transaction holds.

    `merge` upserts by `primary_key` and leaves rows whose values did not change untouched
    (counted as unchanged); `append` inserts; `replace` empties the table on the first
    batch of a run (call `truncate`) and then behaves as merge (with a key) or append.
    """

    def __init__(
        self,
        engine: sa.Engine,
        table: str,
        *,
        primary_key: Sequence[str] = (),
        mode: WriteMode = "merge",
    ) -> None:
        self.engine = engine
        self.name = table
        self.primary_key = list(primary_key)
        self.mode = mode
        if mode == "merge" and not self.primary_key:
            raise ValueError(f"table {table}: write mode merge needs a primary key")
        self.dialect = engine.dialect.name
        self._quote = engine.dialect.identifier_preparer.quote
        self.columns: dict[str, ColumnKind] | None = None
        self._statements: dict[tuple[str, ...], str] = {}

    # -- schema -----------------------------------------------------------------------------

    def _load_columns(self, conn: sa.Connection) -> dict[str, ColumnKind]:
        inspector = sa.inspect(conn)
        if not inspector.has_table(self.name):
            return {}
        columns: dict[str, ColumnKind] = {}
        for column in inspector.get_columns(self.name):
            kind = column["type"]
            if isinstance(kind, sa.Boolean):
                columns[column["name"]] = "boolean"
            elif isinstance(kind, sa.Integer):
                columns[column["name"]] = "integer"
            elif isinstance(kind, sa.Float | sa.Numeric):
                columns[column["name"]] = "float"
            elif isinstance(kind, sa.JSON):
                columns[column["name"]] = "json"
            else:
                columns[column["name"]] = "text"
        return columns

    @staticmethod
    def infer(
        records: Sequence[dict[str, Any]], keys: set[str] | None = None
    ) -> dict[str, ColumnKind]:
        """The column kind of each key (only `keys`, when given) across the records."""
        if keys is None:
            keys = set().union(*(record.keys() for record in records))
        kinds: dict[str, ColumnKind] = {}
        for key in keys:
            kind: ColumnKind | None = None
            for record in records:
                kind = _widen(kind, infer_kind(record.get(key)))
                if kind == "text":
                    break  # nothing is wider
            kinds[key] = kind or "text"
        return kinds

    def prepare(
        self, conn: sa.Connection, records: Sequence[dict[str, Any]]
    ) -> list[tuple[str, ColumnKind]]:
        """Create the table or add the columns these records need; returns what was added."""
        if self.columns is None:
            self.columns = self._load_columns(conn)
        keys: set[str] = set().union(*records)
        if self.columns and keys <= self.columns.keys():
            return []  # the usual case: nothing new in this batch
        # Keys in file order for a new table; new keys only for an existing one.
        ordered = list(dict.fromkeys(k for record in records for k in record))
        fresh = {k for k in ordered if k not in (self.columns or {})}
        inferred = self.infer(records, fresh)
        wanted = {k: inferred[k] for k in ordered if k in inferred}
        added: list[tuple[str, ColumnKind]] = []
        if not self.columns:
            if not wanted:
                return []
            for key in self.primary_key:
                wanted.setdefault(key, "text")
            table = sa.Table(
                self.name,
                sa.MetaData(),
                *(
                    sa.Column(
                        name,
                        self._column_type(name, kind),
                        primary_key=name in self.primary_key,
                        autoincrement=False,
                    )
                    for name, kind in wanted.items()
                ),
            )
            table.create(conn)
            self.columns = dict(wanted)
            return list(wanted.items())
        for name, kind in wanted.items():
            if name not in self.columns:
                column_type = _TYPES[kind].compile(dialect=conn.dialect)
                conn.exec_driver_sql(
                    f"ALTER TABLE {self._quote(self.name)} "
                    f"ADD COLUMN {self._quote(name)} {column_type}"
                )
                self.columns[name] = kind
                added.append((name, kind))
        if added:
            self._statements.clear()
        return added

    def _column_type(self, name: str, kind: ColumnKind) -> Any:
        # On SQLite a single integer key declared INTEGER (not BIGINT) is the rowid itself:
        # rows are stored by key, with no separate index to maintain on every insert.
        if self.dialect == "sqlite" and kind == "integer" and self.primary_key == [name]:
            return sa.Integer()
        return _TYPES[kind]

    def truncate(self, conn: sa.Connection) -> None:
        if self.columns is None:
            self.columns = self._load_columns(conn)
        if self.columns:
            conn.exec_driver_sql(f"DELETE FROM {self._quote(self.name)}")

    # -- rows -------------------------------------------------------------------------------

    def _placeholder(self, kind: ColumnKind) -> str:
        mark = "?" if self.dialect == "sqlite" else "%s"
        if kind == "json" and self.dialect == "postgresql":
            return f"CAST({mark} AS JSONB)"
        return mark

    def _statement(self, columns: tuple[str, ...]) -> str:
        sql = self._statements.get(columns)
        if sql is not None:
            return sql
        assert self.columns is not None
        q = self._quote
        table = q(self.name)
        names = ", ".join(q(c) for c in columns)
        values = ", ".join(self._placeholder(self.columns[c]) for c in columns)
        sql = f"INSERT INTO {table} ({names}) VALUES ({values})"
        if self.primary_key and self.mode != "append":
            keys = ", ".join(q(k) for k in self.primary_key)
            others = [c for c in columns if c not in self.primary_key]
            if others:
                assignments = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in others)
                distinct = " OR ".join(
                    f"{table}.{q(c)} IS DISTINCT FROM excluded.{q(c)}"
                    if self.dialect == "postgresql"
                    else f"{table}.{q(c)} IS NOT excluded.{q(c)}"
                    for c in others
                )
                sql += f" ON CONFLICT ({keys}) DO UPDATE SET {assignments} WHERE {distinct}"
            else:
                sql += f" ON CONFLICT ({keys}) DO NOTHING"
        self._statements[columns] = sql
        return sql

    def _existing(self, conn: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """How many of the rows' keys are in the table already (0 without a key)."""
        if not self.primary_key or self.mode == "append":
            return 0
        assert self.columns is not None
        q = self._quote
        mark = "?" if self.dialect == "sqlite" else "%s"
        at = [list(self.columns).index(k) for k in self.primary_key]
        if len(at) == 1:
            key = self.primary_key[0]
            values = list(set(map(itemgetter(at[0]), rows)))
            # One range probe first: a batch of new integer keys (a first load, or records
            # added since the last run) finds nothing in its range and needs no IN lookup.
            if self.columns[key] == "integer" and all(type(v) is int for v in values):
                sql = (
                    f"SELECT 1 FROM {q(self.name)} WHERE {q(key)} BETWEEN {mark} AND {mark} LIMIT 1"
                )
                if conn.exec_driver_sql(sql, (min(values), max(values))).first() is None:
                    return 0
            found = 0
            for start in range(0, len(values), 900):
                chunk = values[start : start + 900]
                sql = (
                    f"SELECT COUNT(*) FROM {q(self.name)} "
                    f"WHERE {q(key)} IN ({', '.join([mark] * len(chunk))})"
                )
                found += conn.exec_driver_sql(sql, tuple(chunk)).scalar_one()
            return found
        # Composite keys: count row by row (rare, and batches are small).
        where = " AND ".join(f"{q(k)} = {mark}" for k in self.primary_key)
        sql = f"SELECT COUNT(*) FROM {q(self.name)} WHERE {where}"
        return sum(
            conn.exec_driver_sql(sql, tuple(row[i] for i in at)).scalar_one() for row in rows
        )

    def _rows(self, records: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows of `records` in column order, JSON columns encoded, missing fields None."""
        assert self.columns is not None
        columns = tuple(self.columns)
        width = len(columns)
        # A prepared record with as many fields as there are columns has them all, so a
        # C-level itemgetter takes them at once; the others go field by field.
        get_all: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            itemgetter(*columns) if width > 1 else lambda record: (record[columns[0]],)
        )
        rows: list[tuple[Any, ...]] = []
        for record in records:
            if len(record) == width:
                try:
                    rows.append(get_all(record))
                    continue
                except KeyError:
                    pass
            rows.append(tuple(map(record.get, columns)))
        json_at = [i for i, c in enumerate(columns) if self.columns[c] == "json"]
        if not json_at:
            return rows
        dumps = orjson.dumps
        lists = list(map(list, rows))
        for i in json_at:
            for row in lists:
                value = row[i]
                if value is not None:
                    row[i] = dumps(value, default=str).decode()
        return list(map(tuple, lists))

    def write(self, conn: sa.Connection, records: Sequence[dict[str, Any]]) -> WriteCounts:
        """Insert or upsert `records` (already prepared) in the caller's transaction."""
        if not records:
            return WriteCounts()
        assert self.columns is not None
        columns = tuple(self.columns)
        rows = self._rows(records)
        existing = self._existing(conn, rows)
        try:
            cursor = conn.exec_driver_sql(self._statement(columns), rows)
        except sa.exc.IntegrityError as error:
            # What SQLite says when a rowid key (see `_column_type`) gets a value that is
            # not an integer; PostgreSQL refuses one in its BIGINT key as well.
            if "datatype mismatch" not in str(error.orig):
                raise
            raise ValueError(
                f"table {self.name}: the key {', '.join(self.primary_key)} is an INTEGER "
                "column and takes only integers, but this batch has other values"
            ) from error
        changed = max(cursor.rowcount, 0)
        created = len(records) - existing
        if self.mode == "append" or not self.primary_key:
            return WriteCounts(created=len(records))
        updated = max(changed - created, 0)
        return WriteCounts(created=created, updated=updated, unchanged=existing - updated)
