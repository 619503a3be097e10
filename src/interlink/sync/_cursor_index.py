"""The index an incremental `append` read's lookups go through (`SqlSink.reads_from`).

Each record of the window (from the cursor to the highest value the last read saw) is
looked up in the table, which keeps every version of every record: without an index
each lookup reads all of it. `index_cursor_column` gives the table one on the column of
the incremental field, `interlink_cursor_<table>_<column>`, once: a run that finds it
in the catalog sends no DDL (on PostgreSQL, `CREATE INDEX IF NOT EXISTS` would take a
SHARE lock on the table, even for an index that exists, until the batch commits).
An index that cannot be made (the role does not own the table, the table is a view, the
name is taken) leaves the lookups reading the table: the attempt is rolled back to a
savepoint, the batch goes on, and the reason comes back for the run's warnings.
"""

from __future__ import annotations

import sqlite3

from interlink.store import PG_TABLE_NAMED, Connection, dialect_of, quoter

__all__ = ["index_cursor_column", "has_index"]

_PG_INDEX = (
    "SELECT 1 FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
    f"WHERE i.indrelid = ({PG_TABLE_NAMED} LIMIT 1) AND c.relname = %s"
)


def has_index(conn: Connection, table: str, name: str) -> bool:
    """Whether `table` has an index called `name`."""
    if dialect_of(conn) == "sqlite":
        found = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ? AND tbl_name = ?",
            (name, table),
        ).first()
    else:
        found = conn.exec_driver_sql(_PG_INDEX, (table, name)).first()
    return found is not None


def index_cursor_column(conn: Connection, table: str, column: str, name: str) -> str | None:
    """Give `table` the index `name` on `column` unless it has it; None, or why it could
    not be made (the transaction goes on without it)."""
    if has_index(conn, table, name):
        return None
    q = quoter(dialect_of(conn))
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"CREATE INDEX {q(name)} ON {q(table)} ({q(column)})")
    except Exception as exc:
        error = getattr(exc, "orig", exc)
        if not _database_error(error):
            raise
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


def _database_error(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        return True
    try:
        import psycopg  # PostgreSQL only; loaded already when the store is on it
    except ImportError:  # pragma: no cover - installed with interlink
        return False
    return isinstance(error, psycopg.Error)
