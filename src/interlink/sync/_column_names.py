"""Column names a database can hold, derived from the field names alone.

On PostgreSQL a field name over 63 bytes gets its first bytes and a short hash of the
whole name; on SQLite, where column names ignore case, `fold_name` is how two names are
compared. Both are derived from the names, so the same field finds the same column in
every later run.
"""

from __future__ import annotations

import hashlib

__all__ = ["PG_NAME_BYTES", "column_name", "fold_name", "name_digest"]

PG_NAME_BYTES = 63  # PostgreSQL cuts longer identifiers (NAMEDATALEN - 1)


def name_digest(name: str, size: int) -> str:
    return hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:size]


def fold_name(name: str) -> str:
    """A name as SQLite compares it: ASCII letters without case, everything else as is."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def column_name(field: str, dialect: str) -> str:
    """The column a field is stored in, before case clashes: the field's own name, or on
    PostgreSQL, for a name over 63 bytes, its first bytes, `_` and a hash of the whole."""
    if dialect != "postgresql" or len(field.encode()) <= PG_NAME_BYTES:
        return field
    head = field.encode()[: PG_NAME_BYTES - 11].decode("utf-8", "ignore")
    return f"{head}_{name_digest(field, 10)}"
