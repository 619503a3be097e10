"""A column kind's SQL type, and widening columns of a table that already holds rows.

`TableWriter` decides which columns widen (boolean/integer/json -> float -> text, see
`_table_writer`); this module carries it out in the caller's transaction. PostgreSQL
changes a column's type in place (`ALTER COLUMN ... TYPE ... USING`). SQLite cannot: the
table is copied into one with the wider columns, which takes the old one's place with
its indexes and triggers (views keep working).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from ._column_kinds import EXACT_INT, ColumnKind, sqlite_text

__all__ = ["alter_columns", "holds_big_integers", "rebuild_sqlite_table", "sql_type"]

Quote = Callable[[str], str]
Widened = Mapping[str, tuple[ColumnKind, ColumnKind]]
"""Column -> (its kind now, the kind it widens to)."""

_TYPES: dict[str, Any] = {
    "boolean": sa.Boolean(),
    "integer": sa.BigInteger(),
    "float": sa.Float(precision=53),
    "text": sa.Text(),
    "json": sa.JSON(),  # JSONB on PostgreSQL: see `sql_type`
}


def sql_type(kind: ColumnKind, dialect: str) -> Any:
    """The column type of `kind` on `dialect`."""
    if kind == "json" and dialect == "postgresql":
        # JSONB: plain JSON there has no equality, which the upsert compares. Imported
        # here: SQLAlchemy's PostgreSQL dialect is for PostgreSQL runs only.
        from sqlalchemy.dialects.postgresql import JSONB

        return JSONB()
    return _TYPES[kind]


def holds_big_integers(conn: sa.Connection, table: str, column: str, quote: Quote) -> bool:
    """Whether `column` has an integer a double cannot hold exactly."""
    q = quote
    sql = (
        f"SELECT 1 FROM {q(table)} "
        f"WHERE {q(column)} > {EXACT_INT} OR {q(column)} < -{EXACT_INT} LIMIT 1"
    )
    return conn.exec_driver_sql(sql).first() is not None


def alter_columns(conn: sa.Connection, table: str, widened: Widened, quote: Quote) -> None:
    """PostgreSQL: change the columns' types in place (`USING` converts the rows)."""
    q = quote
    for column, (_, new) in widened.items():
        target = sql_type(new, "postgresql").compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} TYPE {target} "
            f"USING CAST({q(column)} AS {target})"
        )


def rebuild_sqlite_table(
    conn: sa.Connection,
    table: str,
    columns: Mapping[str, ColumnKind],
    widened: Widened,
    quote: Quote,
    define: Callable[[str, dict[str, ColumnKind]], sa.Table],
) -> None:
    """SQLite: copy `table` into one with the wider `columns` (`define` builds the new
    table's definition), in the transaction, and put it in the old one's place with the
    old one's indexes and triggers."""
    q = quote
    temp = f"interlink_widen_{table}"
    extras = (
        conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? "
            "AND type IN ('index', 'trigger') AND sql IS NOT NULL",
            (table,),
        )
        .scalars()
        .all()
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    # Numbers become text in Python: SQLite's own CAST keeps 15 digits of a double.
    driver.create_function("interlink_text", 2, sqlite_text, deterministic=True)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(temp)}")
    define(temp, dict(columns)).create(conn)
    names = ", ".join(q(c) for c in columns)
    values = ", ".join(
        f"interlink_text({q(c)}, '{widened[c][0]}')"
        if c in widened and widened[c][1] == "text"
        else q(c)
        for c in columns
    )
    conn.exec_driver_sql(f"INSERT INTO {q(temp)} ({names}) SELECT {values} FROM {q(table)}")
    conn.exec_driver_sql(f"DROP TABLE {q(table)}")
    # A view that names the table would stop a modern RENAME (its table is gone for a
    # moment); the legacy RENAME leaves views alone, and they find the new table.
    legacy = conn.exec_driver_sql("PRAGMA legacy_alter_table").scalar()
    conn.exec_driver_sql("PRAGMA legacy_alter_table = ON")
    try:
        conn.exec_driver_sql(f"ALTER TABLE {q(temp)} RENAME TO {q(table)}")
    finally:
        conn.exec_driver_sql(f"PRAGMA legacy_alter_table = {'ON' if legacy else 'OFF'}")
    for sql in extras:
        conn.exec_driver_sql(sql)
