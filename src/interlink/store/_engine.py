"""Open the configured database: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from interlink.config import DatabaseConfig

__all__ = ["create_engine"]


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


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
    """A SQLAlchemy engine for `database:`; creates the SQLite file's folder if needed."""
    raw = database.url if isinstance(database, DatabaseConfig) else database
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            echo=echo,
            json_serializer=_json,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
        return sa.create_engine(
            url,
            echo=echo,
            json_serializer=_json,
            json_deserializer=orjson.loads,
            pool_pre_ping=True,
        )
    raise ValueError(f"unsupported database {backend!r}; expected sqlite or postgresql")
