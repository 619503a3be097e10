"""A destination table's columns as `TableWriter` sees them: each one's kind and the type it
was declared with. SQLite is read with `PRAGMA table_info` (no SQLAlchemy on a run's way),
its declared types sorted into kinds as SQLAlchemy's reflection sorts them (SQLite's type
affinity: tests/sync/test_column_types.py compares the two); PostgreSQL from its catalog,
the table found as SQLAlchemy's inspector finds it (`store.PG_TABLE_NAMED`), the types
sorted as it sorts them.
"""

from __future__ import annotations

import re

from interlink.store import PG_TABLE_NAMED, Connection, dialect_of, has_table, quote

from ._column_kinds import ColumnKind

__all__ = ["TableColumn", "read_columns", "sqlite_kind"]

TableColumn = tuple[str, ColumnKind, str]
"""(name, kind, declared type)."""

_NAMED: dict[str, ColumnKind] = {
    "BOOL": "boolean",
    "BOOLEAN": "boolean",
    "BIGINT": "integer",
    "INT": "integer",
    "INTEGER": "integer",
    "SMALLINT": "integer",
    "DECIMAL": "float",
    "DOUBLE": "float",
    "FLOAT": "float",
    "NUMERIC": "float",
    "REAL": "float",
    "JSON": "json",
    "JSONB": "json",
}
_TEXT_NAMES = frozenset(
    "BLOB CHAR DATE DATE_CHAR DATETIME DATETIME_CHAR NCHAR NVARCHAR TEXT TIME TIME_CHAR "
    "TIMESTAMP VARCHAR".split()
)
_TYPE_NAME = re.compile(r"([\w ]+)(\(.*?\))?")


def sqlite_kind(declared: str) -> ColumnKind:
    """The kind of an SQLite column declared `declared` (in capitals, as SQLAlchemy's
    reflection reads it)."""
    match = _TYPE_NAME.match(declared.upper())
    name = match.group(1) if match else ""
    known = _NAMED.get(name)
    if known is not None:
        return known
    if name in _TEXT_NAMES:
        return "text"
    if "INT" in name:
        return "integer"
    if "CHAR" in name or "CLOB" in name or "TEXT" in name or "BLOB" in name or not name:
        return "text"
    return "float"  # REAL, FLOA, DOUB, and SQLite's NUMERIC affinity for anything else


def read_columns(conn: Connection, table: str) -> list[TableColumn] | None:
    """The table's columns in order; None when there is no such table."""
    if dialect_of(conn) == "sqlite":
        rows = conn.exec_driver_sql(f"PRAGMA main.table_info({quote(table)})").all()
        if not rows:
            return None
        return [(row[1], sqlite_kind(row[2]), row[2]) for row in rows]
    return _postgres_columns(conn, table)


_PG_KINDS: dict[str, ColumnKind] = {
    "bool": "boolean",
    "int2": "integer",
    "int4": "integer",
    "int8": "integer",
    "float4": "float",
    "float8": "float",
    "numeric": "float",
    "json": "json",
    "jsonb": "json",
}
"""PostgreSQL's type names and their kinds, as SQLAlchemy's reflection sorts them
(Boolean, Integer, Float and Numeric, JSON); every other type, an array or a domain
included, is text."""

_PG_COLUMNS = (
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typname "
    "FROM pg_catalog.pg_attribute a "
    "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    f"WHERE a.attrelid = ({PG_TABLE_NAMED} LIMIT 1) AND a.attnum > 0 "
    "AND NOT a.attisdropped ORDER BY a.attnum"
)


def _postgres_columns(conn: Connection, table: str) -> list[TableColumn] | None:
    rows = conn.exec_driver_sql(_PG_COLUMNS, (table,)).all()
    if not rows and not has_table(conn, table):
        return None
    return [(name, _PG_KINDS.get(base, "text"), declared.upper()) for name, declared, base in rows]
