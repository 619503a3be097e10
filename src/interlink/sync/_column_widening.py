"""A column kind's SQL type, and widening columns of a table that already holds rows.

`TableWriter` decides which columns widen (boolean/integer/json -> float -> text, see
`_table_writer`); this module carries it out in the caller's transaction. PostgreSQL
changes a column's type in place (`ALTER COLUMN ... TYPE ... USING`). SQLite cannot: the
table is copied into one with the wider columns, which takes the old one's place with
its indexes and triggers (views keep working).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from interlink.store import Connection, driver_of

from ._column_kinds import EXACT_INT, ColumnKind, sqlite_text

__all__ = [
    "alter_columns",
    "create_table_sql",
    "holds_big_integers",
    "rebuild_sqlite_table",
    "sql_type",
]

Quote = Callable[[str], str]
Widened = Mapping[str, tuple[ColumnKind, ColumnKind]]
"""Column -> (its kind now, the kind it widens to)."""

_TYPES: dict[str, dict[ColumnKind, str]] = {
    "sqlite": {
        "boolean": "BOOLEAN",
        "integer": "BIGINT",
        "float": "FLOAT",
        "text": "TEXT",
        "json": "JSON",
    },
    # JSONB: plain JSON there has no equality, which the upsert compares.
    "postgresql": {
        "boolean": "BOOLEAN",
        "integer": "BIGINT",
        "float": "FLOAT(53)",
        "text": "TEXT",
        "json": "JSONB",
    },
}
"""What SQLAlchemy's Boolean, BigInteger, Float(53), Text and JSON (JSONB) compile to
(tests/sync/test_column_types.py checks that they still do)."""


def sql_type(kind: ColumnKind, dialect: str) -> str:
    """The column type of `kind` on `dialect`, as DDL writes it."""
    return _TYPES[dialect][kind]


def create_table_sql(table: str, columns: Mapping[str, str], keys: list[str], quote: Quote) -> str:
    """`CREATE TABLE` of `columns` (name -> SQL type) with the primary key `keys` (its
    columns NOT NULL), as SQLAlchemy's `Table.create` writes it."""
    lines = [
        f"{quote(name)} {column_type}" + (" NOT NULL" if name in keys else "")
        for name, column_type in columns.items()
    ]
    if keys:
        lines.append(f"PRIMARY KEY ({', '.join(quote(k) for k in keys)})")
    return f"CREATE TABLE {quote(table)} (\n\t" + ", \n\t".join(lines) + "\n)"


def holds_big_integers(conn: Connection, table: str, column: str, quote: Quote) -> bool:
    """Whether `column` has an integer a double cannot hold exactly."""
    q = quote
    sql = (
        f"SELECT 1 FROM {q(table)} "
        f"WHERE {q(column)} > {EXACT_INT} OR {q(column)} < -{EXACT_INT} LIMIT 1"
    )
    return conn.exec_driver_sql(sql).first() is not None


def alter_columns(conn: Connection, table: str, widened: Widened, quote: Quote) -> None:
    """PostgreSQL: change the columns' types in place (`USING` converts the rows)."""
    q = quote
    for column, (_, new) in widened.items():
        target = sql_type(new, "postgresql")
        conn.exec_driver_sql(
            f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} TYPE {target} "
            f"USING CAST({q(column)} AS {target})"
        )


def rebuild_sqlite_table(
    conn: Connection,
    table: str,
    columns: Mapping[str, ColumnKind],
    widened: Widened,
    quote: Quote,
    define: Callable[[str, dict[str, ColumnKind]], str],
) -> None:
    """SQLite: copy `table` into one with the wider `columns` (`define` writes the new
    table's `CREATE TABLE`), in the transaction, and put it in the old one's place with
    the old one's indexes and triggers."""
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
    driver = driver_of(conn)
    # Numbers become text in Python: SQLite's own CAST keeps 15 digits of a double.
    driver.create_function("interlink_text", 2, sqlite_text, deterministic=True)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(temp)}")
    conn.exec_driver_sql(define(temp, dict(columns)))
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
