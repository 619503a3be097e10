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

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from interlink.config import DatabaseConfig
from interlink.errors import ConfigError

from ._pg_url import CONNECT_TIMEOUT, cannot_connect
from ._sqlite_file import check_sqlite_file, set_pragmas

__all__ = ["create_engine"]


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _sqlite_json(value: Any) -> Any:
    # SQLite gives a JSON column NUMERIC affinity: a bare number (a cursor of 1234 or
    # 12.5) comes back as a number, not as the text orjson reads.
    return value if isinstance(value, int | float) else orjson.loads(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    set_pragmas(dbapi_connection)


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
        timeout = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT}
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
    check_sqlite_file(_shown(url), name)


# --- PostgreSQL: the first connection ---------------------------------------------------


def _check_postgres(engine: sa.Engine, url: URL) -> None:
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        password = None if url.password is None else str(url.password)
        raise cannot_connect(_shown(url), str(exc.orig), password) from None


def _error(url: URL, message: str) -> ConfigError:
    return ConfigError(f"{_shown(url)}: {message}", key="database")


def _shown(url: URL) -> str:
    """The URL as messages show it: password masked, no query string (it may hold one too)."""
    shown = url.set(query={})
    if shown.drivername == "postgresql+psycopg":
        shown = shown.set(drivername="postgresql")
    return shown.render_as_string(hide_password=True)
