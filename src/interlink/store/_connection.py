"""The connection the run path writes through: SQLAlchemy's, or on an SQLite file a
`sqlite3` connection that answers the same few calls, so that a run on SQLite never loads
SQLAlchemy (about 0.1 s of every process's start-up).

```
Store.begin()  ->  SqliteConnection   an SQLite file (store/_sqlite_file.py)
               ->  sa.Connection      PostgreSQL, SQLite in memory or by URI
```

Both satisfy `Connection`: `exec_driver_sql` (the driver's own SQL and parameters, `?` on
SQLite and `%s` on PostgreSQL; a list of rows runs `executemany`), whose result has
`rowcount`, `first`, `scalar`, `scalar_one`, `scalars().all()`, `all` and iteration, and
`begin_nested` (a savepoint). Everything the run path writes with is SQL text; the helpers
here say what differs between the databases: the parameter marks (`named`), whether a
table exists (`has_table`), and how a JSON value is read back (`load_json`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import orjson

__all__ = [
    "PG_TABLE_NAMED",
    "savepoint",
    "Connection",
    "DriverResult",
    "Result",
    "dialect_of",
    "driver_of",
    "dump_json",
    "has_table",
    "load_json",
    "named",
    "quote",
    "quoter",
]


class Result(Protocol):
    """What `exec_driver_sql` returns (SQLAlchemy's CursorResult is one)."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Any: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...

    def scalars(self) -> Any: ...

    def all(self) -> Any: ...

    def mappings(self) -> Any: ...

    @property
    def lastrowid(self) -> int: ...

    def __iter__(self) -> Any: ...


class Connection(Protocol):
    """A connection inside a transaction; see the module docstring."""

    @property
    def dialect(self) -> Any: ...

    def exec_driver_sql(self, statement: str, parameters: Any = None) -> Result: ...

    def begin_nested(self) -> AbstractContextManager[Any]: ...


def dialect_of(conn: Connection) -> str:
    """'sqlite' or 'postgresql'."""
    name: str = conn.dialect.name
    return name


def driver_of(conn: Connection) -> Any:
    """The driver's own connection (sqlite3's, psycopg's) under `conn`."""
    driver = getattr(conn, "driver", None)
    if driver is not None:
        return driver
    return conn.connection.driver_connection  # type: ignore[attr-defined]


def quote(name: str) -> str:
    """`name` as an identifier, always quoted (the same name on SQLite and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


def _quote_percents(name: str) -> str:
    return quote(name).replace("%", "%%")


def quoter(dialect: str) -> Callable[[str], str]:
    """`quote` for statements on `dialect`: psycopg reads `%` as a parameter mark in every
    statement SQLAlchemy hands it, so on PostgreSQL a `%` in a name is doubled (as
    SQLAlchemy's own quoting does)."""
    return _quote_percents if dialect == "postgresql" else quote


_MARK = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_translated: dict[str, str] = {}


def named(conn: Connection, sql: str) -> str:
    """`sql` written with `:name` parameters (and no `%`), in the marks of `conn`'s
    driver: sqlite3 reads `:name` itself, psycopg wants `%(name)s`."""
    if dialect_of(conn) == "sqlite":
        return sql
    done = _translated.get(sql)
    if done is None:
        done = _translated[sql] = _MARK.sub(r"%(\1)s", sql)
    return done


def has_table(conn: Connection, table: str) -> bool:
    """Whether `table` (or a view of that name) exists in the connection's schema."""
    if dialect_of(conn) == "sqlite":
        return conn.exec_driver_sql(f"PRAGMA main.table_info({quote(table)})").first() is not None
    return conn.exec_driver_sql(PG_TABLE_NAMED + " LIMIT 1", (table,)).first() is not None


PG_TABLE_NAMED = (
    "SELECT c.oid FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = %s AND c.relkind IN ('r', 'p', 'f', 'v', 'm') "
    "AND pg_catalog.pg_table_is_visible(c.oid) AND n.nspname <> 'pg_catalog'"
)
"""The table (or view) of that name the search path finds, as SQLAlchemy's `has_table`
looks for it: a table, partitioned or foreign table, view or materialized view, visible
on the search path, outside pg_catalog."""


def dump_json(value: Any) -> str | None:
    """A JSON column's value as the drivers take it: its text (SQL NULL for None)."""
    return None if value is None else orjson.dumps(value, default=str).decode()


def load_json(conn: Connection, value: Any) -> Any:
    """A JSON column's value as read through `exec_driver_sql`: psycopg parses it; SQLite
    gives the text, or a number for a bare number (a JSON column has NUMERIC affinity)."""
    if dialect_of(conn) != "sqlite" or value is None or isinstance(value, int | float):
        return value
    return orjson.loads(value)


class _Scalars:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def all(self) -> list[Any]:
        return [row[0] for row in self._rows]


class DriverResult:
    """A statement's result on a driver's cursor (sqlite3's, psycopg's), with the
    accessors of SQLAlchemy's CursorResult that interlink uses (`Result`)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        count: int = self._cursor.rowcount
        return count

    @property
    def lastrowid(self) -> int:
        return self._cursor.lastrowid or 0

    def first(self) -> Any:
        row = self._cursor.fetchone()
        self._cursor.close()
        return row

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        rows = self._cursor.fetchall()
        if len(rows) != 1:
            raise LookupError(f"expected one row, got {len(rows)}")
        return rows[0][0]

    def scalars(self) -> _Scalars:
        return _Scalars(self._cursor.fetchall())

    def all(self) -> list[Any]:
        rows: list[Any] = self._cursor.fetchall()
        return rows

    def mappings(self) -> list[dict[str, Any]]:
        names = [column[0] for column in self._cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


@contextmanager
def savepoint(driver: Any, name: str, can_roll_back: Callable[[], bool]) -> Iterator[None]:
    """A savepoint `name` on a driver's connection: released on exit, rolled back to on
    an exception when `can_roll_back()` says there is still a transaction to do it in."""
    driver.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        if can_roll_back():
            driver.execute(f"ROLLBACK TO SAVEPOINT {name}")
            driver.execute(f"RELEASE SAVEPOINT {name}")
        raise
    driver.execute(f"RELEASE SAVEPOINT {name}")
