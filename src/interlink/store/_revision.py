"""The schema revision this release needs, and the quick check that an SQLite file is at
it, made with `sqlite3` alone (every `interlink run` opens with it; `store._migrate`
creates and upgrades, with SQLAlchemy, when it is not)."""

from __future__ import annotations

import os
import sqlite3

__all__ = ["HEAD", "SCHEMA_VERSION", "VERSION_TABLE", "sqlite_at_head"]

SCHEMA_VERSION = 6
"""The number of the newest migration: revision "0006" in store/migrations/versions."""
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
