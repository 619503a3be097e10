"""PostgreSQL's COPY for a batch of rows: the fast way in for `TableWriter` on PostgreSQL.

`executemany` sends one INSERT per row (psycopg pipelines them, but the server still plans
and runs each one); COPY streams the whole batch as one statement, several times faster.

- append: `COPY table (columns) FROM STDIN`, straight into the table;
- merge: COPY into a temporary stage shaped like the destination, then one statement that
  moves the rows out of the stage and upserts them, `WITH staged AS (DELETE FROM stage
  RETURNING ...) INSERT ... SELECT ... FROM staged ON CONFLICT ... DO UPDATE ... WHERE
  ... IS DISTINCT FROM ...` (the same upsert the row-by-row path sends). The stage is a
  session's temporary table (`CREATE TEMP TABLE IF NOT EXISTS ... ON COMMIT DELETE ROWS
  AS SELECT ... FROM table WITH NO DATA`: the columns' types, no constraints), named
  after the table's name, columns and their kinds, so a table that grew or widened gets a
  new one; it is left empty by the move, and by every commit.

Everything runs on the caller's connection, inside its transaction: the rows still commit
together with the checkpoint, or not at all (a rolled-back first batch takes its stage
with it, and the next one makes it again).

COPY needs what `TableWriter` makes sure of first (see `TableWriter._copies`): values
already converted for their columns, and, for a merge, no key twice in the batch (one
INSERT cannot update a row twice) and a role that may create temporary tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, cast

from interlink.store import Connection, driver_of

__all__ = ["STAGE_PREFIX", "can_create_temp_tables", "copy_rows", "merge_by_copy", "stage_name"]

STAGE_PREFIX = "interlink_copy_"
"""How the name of every temporary stage begins."""

Quote = Callable[[str], str]


def can_create_temp_tables(conn: Connection) -> bool:
    """Whether the session's role may create temporary tables (PUBLIC may, by default)."""
    sql = "SELECT has_database_privilege(current_database(), 'TEMPORARY')"
    return bool(conn.exec_driver_sql(sql).scalar())


def copy_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    quote: Quote,
) -> int:
    """COPY `rows` (values in `columns`' order) into `table`; returns how many went in."""
    names = ", ".join(quote(c) for c in columns)
    # `quote` doubles every `%` for the driver's placeholders; a COPY sent without
    # parameters is not scanned for them, so the name must go as it is.
    sql = f"COPY {quote(table)} ({names}) FROM STDIN".replace("%%", "%")
    driver = driver_of(conn)
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            write_row = copy.write_row
            for row in rows:
                write_row(row)
    except Exception as exc:
        if getattr(conn, "driver", None) is not None:
            raise  # psycopg's own error, as every statement on `PgPool`'s connections
        import sqlalchemy as sa  # an SQLAlchemy connection: its kind of error

        conn = cast(sa.Connection, conn)

        # As SQLAlchemy reports a failed statement: the driver's error, wrapped; and, as it
        # does, a lost connection is invalidated, so that no ROLLBACK is tried on it (its
        # failure would hide this error).
        dbapi_error = conn.dialect.loaded_dbapi.Error
        lost = isinstance(exc, dbapi_error) and conn.dialect.is_disconnect(
            exc, conn.connection.dbapi_connection, None
        )
        error = sa.exc.DBAPIError.instance(
            sql, None, exc, dbapi_error, dialect=conn.dialect, connection_invalidated=lost
        )
        if lost:
            conn.invalidate(error)
        raise error from exc
    return len(rows)


def stage_name(table: str, shape: str) -> str:
    """The stage of `table` with this `shape` (its columns and their kinds, as text)."""
    digest = hashlib.sha1(f"{table}\x00{shape}".encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{STAGE_PREFIX}{digest}"


def merge_by_copy(
    conn: Connection,
    table: str,
    shape: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    upsert_tail: str,
    quote: Quote,
) -> int:
    """COPY `rows` into the stage of `table` (`shape`: see `stage_name`), then move them
    into `table` with one upsert ending in `upsert_tail` (its `ON CONFLICT ...` clause);
    returns the rows the upsert inserted or changed."""
    stage = stage_name(table, shape)
    names = ", ".join(quote(c) for c in columns)
    # The columns' names and types, no constraints: what the table refuses, the upsert
    # refuses with the table's own error.
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {quote(stage)} ON COMMIT DELETE ROWS "
        f"AS SELECT {names} FROM {quote(table)} WITH NO DATA"
    )
    copy_rows(conn, stage, columns, rows, quote)
    cursor = conn.exec_driver_sql(
        f"WITH staged AS (DELETE FROM pg_temp.{quote(stage)} RETURNING {names}) "
        f"INSERT INTO {quote(table)} ({names}) SELECT {names} FROM staged {upsert_tail}"
    )
    return max(cursor.rowcount, 0)
