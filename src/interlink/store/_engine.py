"""Open the configured database: SQLite (WAL) by default, PostgreSQL by URL.

`create_engine` checks the database before it returns (an SQLite file's folder, then one
connection), so a database interlink cannot use is a `ConfigError` naming `database` here,
at start-up, and not a driver's traceback later:

```
database: sqlite:////srv/app/state.db: the folder /srv/app does not exist; create it (...)
database: sqlite:///.interlink: /home/me/proj/.interlink is a folder, not a database file; ...
database: cannot connect to postgresql://app:***@db:5432/app: connection refused (...)
database: cannot connect to postgresql://app:***@db:5432/app: password authentication failed ...
```

The password is masked in every message, and the URL's query string left out.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from interlink.config import DatabaseConfig
from interlink.errors import ConfigError

__all__ = ["create_engine"]

_CONNECT_TIMEOUT = 10
"""Seconds to wait for PostgreSQL to answer, unless the URL sets `connect_timeout`."""

# psycopg's text repeats the host and port the URL already shows.
_PG_PREFIX = re.compile(
    r'^(connection failed: )?connection to server at "[^"]*"(, port \d+)? failed: '
)
_PG_FATAL = re.compile(r"^FATAL:\s+")


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _sqlite_json(value: Any) -> Any:
    # SQLite gives a JSON column NUMERIC affinity: a bare number (a cursor of 1234 or
    # 12.5) comes back as a number, not as the text orjson reads.
    return value if isinstance(value, int | float) else orjson.loads(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL: a commit survives a killed process
    # (the WAL is fsynced at checkpoints), a power loss may lose the last commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(database: DatabaseConfig | str, *, echo: bool = False) -> sa.Engine:
    """A SQLAlchemy engine for `database:`, checked with one connection.

    A SQLite file's folder is created when the path is relative (the default
    `.interlink/`); an absolute path's folder must exist. Anything that keeps interlink
    from opening the database raises ConfigError with `key="database"`.
    """
    raw = database.url if isinstance(database, DatabaseConfig) else database
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        _check_sqlite(url)
        engine = sa.create_engine(
            url,
            echo=echo,
            json_serializer=_json,
            json_deserializer=_sqlite_json,
            connect_args={"check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
        timeout = {} if "connect_timeout" in url.query else {"connect_timeout": _CONNECT_TIMEOUT}
        engine = sa.create_engine(
            url,
            echo=echo,
            json_serializer=_json,
            json_deserializer=orjson.loads,
            pool_pre_ping=True,
            connect_args=timeout,
        )
        _check_postgres(engine, url)
        return engine
    raise ValueError(f"unsupported database {backend!r}; expected sqlite or postgresql")


# --- SQLite: the file and its folder ----------------------------------------------------


def _check_sqlite(url: URL) -> None:
    """Create the folder of a relative path; refuse a path SQLite could not open or write."""
    name = url.database
    if not name or name == ":memory:" or url.query.get("uri") in ("true", "1"):
        return
    if "\x00" in name:
        raise _error(url, "the path contains a NUL character")
    if name.startswith("~"):
        raise _error(url, "'~' is not expanded in a database URL; write the whole path")
    # SQLAlchemy hands SQLite the absolute path, relative to the working directory.
    path = Path(os.path.abspath(name))
    if path.is_dir():
        raise _error(
            url,
            f"{path} is a folder, not a database file; name a file in it, such as "
            f"sqlite:///{path / 'interlink.db'}",
        )
    folder = path.parent
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.is_dir():
            raise _error(url, f"{parent} is a file, not a folder")
    if not folder.exists():
        if Path(name).is_absolute():
            raise _error(
                url,
                f"the folder {folder} does not exist; create it (interlink creates the "
                "folder only for a relative path, such as the default .interlink/)",
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _error(url, f"cannot create the folder {folder}: {_reason(exc)}") from None
    # SQLite writes the file and, beside it, its -wal and -shm files.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _error(url, f"cannot write in the folder {folder}: permission denied")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise _error(url, f"cannot read and write {path}: permission denied")
    _open_sqlite(url, path)


def _open_sqlite(url: URL, path: Path) -> None:
    """Open the file once and read its header: what a folder check cannot see (a file that
    is no database, a file system that refuses) fails here.

    This connection is sqlite3's own, without the engine's pragmas: switching a fresh file
    to WAL is for the first connection under the schema lock (store._migrate), and two
    processes doing it at once make one fail.
    """
    try:
        connection = sqlite3.connect(path, timeout=10)
        try:
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise _error(url, f"cannot open it: {' '.join(str(exc).split())}") from None


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


# --- PostgreSQL: the first connection ---------------------------------------------------


def _check_postgres(engine: sa.Engine, url: URL) -> None:
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        text = " ".join(str(exc.orig).split())
        text = _PG_FATAL.sub("", _PG_PREFIX.sub("", text))
        if url.password:
            text = text.replace(str(url.password), "***")
        if text.lower().startswith("connection refused"):
            text = "connection refused (is PostgreSQL running there?)"
        raise ConfigError(f"cannot connect to {_shown(url)}: {text}", key="database") from None


def _error(url: URL, message: str) -> ConfigError:
    return ConfigError(f"{_shown(url)}: {message}", key="database")


def _shown(url: URL) -> str:
    """The URL as messages show it: password masked, no query string (it may hold one too)."""
    shown = url.set(query={})
    if shown.drivername == "postgresql+psycopg":
        shown = shown.set(drivername="postgresql")
    return shown.render_as_string(hide_password=True)
