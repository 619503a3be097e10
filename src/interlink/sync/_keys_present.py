"""How many of a batch's keys a table holds already: what tells a merge's created rows
from its updated ones (`TableWriter.write`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from interlink.store import Connection

__all__ = ["keys_present"]

IN_CHUNK = 900
"""Keys one `IN (...)` lookup carries (under SQLite's old 999-parameter limit)."""


def keys_present(
    conn: Connection,
    table: str,
    keys: Sequence[str],
    positions: Sequence[int],
    rows: Sequence[tuple[Any, ...]],
    *,
    values: Sequence[Any] | None,
    integer_keys: bool,
    dialect: str,
    quote: Callable[[str], str],
) -> int:
    """How many of `rows`' keys (columns `keys`, at `positions` in each row) are in
    `table`. `values` are the single key's values when already taken out of the rows;
    `integer_keys` says they are all integers, which allows a range probe first."""
    mark = "?" if dialect == "sqlite" else "%s"
    name = quote(table)
    if len(positions) == 1:
        key = quote(keys[0])
        column = values or list(map(itemgetter(positions[0]), rows))
        # One range probe first: a batch of new integer keys (a first load, or records
        # added since the last run) finds nothing in its range and needs no IN lookup
        # (nor the set of its keys).
        if integer_keys and column:
            try:
                bounds = (min(column), max(column))
            except TypeError:  # a key left empty: no range, the lookup counts the rest
                bounds = None
            if bounds is not None:
                sql = f"SELECT 1 FROM {name} WHERE {key} BETWEEN {mark} AND {mark} LIMIT 1"
                if conn.exec_driver_sql(sql, bounds).first() is None:
                    return 0
        present = list(set(column) - {None})
        found = 0
        for start in range(0, len(present), IN_CHUNK):
            chunk = present[start : start + IN_CHUNK]
            sql = f"SELECT COUNT(*) FROM {name} WHERE {key} IN ({', '.join([mark] * len(chunk))})"
            found += conn.exec_driver_sql(sql, tuple(chunk)).scalar_one()
        return found
    # Composite keys: count row by row (rare, and batches are small).
    where = " AND ".join(f"{quote(k)} = {mark}" for k in keys)
    sql = f"SELECT COUNT(*) FROM {name} WHERE {where}"
    return sum(
        conn.exec_driver_sql(sql, tuple(row[i] for i in positions)).scalar_one() for row in rows
    )
