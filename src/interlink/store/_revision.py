"""The schema revision this release needs, and the quick checks that a database is at it,
made with `sqlite3` or psycopg alone (every `interlink run` opens with one; `store._migrate`
creates and upgrades, with SQLAlchemy, when it is not)."""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._pg_pool import PgPool

__all__ = ["HEAD", "SCHEMA_VERSION", "VERSION_TABLE", "pg_at_head", "sqlite_at_head"]

SCHEMA_VERSION = 7
"""The number of the newest migration: revision "0007" in store/migrations/versions."""
HEAD = f"{SCHEMA_VERSION:04d}"
VERSION_TABLE = "interlink_alembic_version"


def sqlite_at_head(path: str) -> bool:
    """Whether the SQLite file at `path` has interlink's tables at `HEAD`; False for a file
    that does not exist yet or is empty (its first connection switches it to WAL, which
    is for the schema lock's holder alone: see `store._migrate`), and on any error (the
    slow path finds out what it is)."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return False
    try:
        connection = sqlite3.connect(path, timeout=10)
    except sqlite3.Error:
        return False
    try:
        found = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return found == [(HEAD,)]


def pg_at_head(pool: PgPool) -> bool:
    """Whether the PostgreSQL database of `pool` has interlink's tables at `HEAD`; False
    when they are missing or any statement fails (the slow path finds out why). A
    connection that cannot be made raises psycopg's OperationalError."""
    import psycopg

    try:
        with pool.begin() as conn:
            found = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").all()
    except psycopg.OperationalError:
        raise
    except psycopg.Error:
        return False
    return [tuple(row) for row in found] == [(HEAD,)]
