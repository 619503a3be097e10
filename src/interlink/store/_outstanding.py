"""The records a pipeline's runs still owe its destination (`interlink_outstanding`).

A record that fails in a run (a value the table cannot take, a mapping error, an id the
source answers 404 for) is recorded here under its key, in the same transaction as the
batch it failed in, and stays until a run writes it (or a whole read no longer finds it
at the source, or someone gives it up with `interlink failed forget`). The cursor may move
past it; this table is what keeps it from being forgotten: every later run fetches what it
holds again by id, or ends `completed_with_errors` naming it.

Plain SQL text with `:name` parameters on the store's `Connection`, so the run path on
SQLite never loads SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ._connection import Connection, named

__all__ = [
    "Outstanding",
    "count_outstanding",
    "forget_outstanding",
    "list_outstanding",
    "owe",
    "owed_keys",
    "settle",
]

_OWE = (
    "INSERT INTO interlink_outstanding (pipeline, record_key, run_id, step, error, "
    "first_failed_at, failed_at, attempts) VALUES (:pipeline, :key, :run_id, :step, :error, "
    ":now, :now, 1) ON CONFLICT (pipeline, record_key) DO UPDATE SET run_id = excluded.run_id, "
    "step = excluded.step, error = excluded.error, failed_at = excluded.failed_at, "
    "attempts = CASE WHEN interlink_outstanding.run_id = excluded.run_id "
    "THEN interlink_outstanding.attempts ELSE interlink_outstanding.attempts + 1 END"
)
_SETTLE = "DELETE FROM interlink_outstanding WHERE pipeline = :pipeline AND record_key = :key"
_KEYS = (
    "SELECT record_key, run_id FROM interlink_outstanding WHERE pipeline = :pipeline "
    "ORDER BY failed_at, record_key"
)
_MARKS = 500
"""Keys named in one statement at most (SQLite and PostgreSQL cap a statement's
parameters)."""
_COLUMNS = "pipeline, record_key, run_id, step, error, first_failed_at, failed_at, attempts"


class Outstanding(NamedTuple):
    """A record a pipeline's run failed to write and no run has written since."""

    pipeline: str
    """The state key of the pipeline: `NAME`, or `NAME@ACCOUNT` for a connected account."""
    record_key: str
    run_id: int
    """The run it last failed in."""
    step: str
    error: str
    first_failed_at: float
    failed_at: float
    attempts: int
    """How many runs it failed in."""


def owe(
    conn: Connection,
    pipeline: str,
    run_id: int,
    failures: Sequence[tuple[str, str, str]],
    now: float,
) -> None:
    """In the caller's transaction: records (key, step, error) failed in run `run_id`. A
    key owed already keeps when it first failed, and counts one more run."""
    if not failures:
        return
    rows = [
        {"pipeline": pipeline, "key": key, "run_id": run_id, "step": step, "error": error}
        | {"now": now}
        for key, step, error in failures
    ]
    conn.exec_driver_sql(named(conn, _OWE), rows)


def settle(conn: Connection, pipeline: str, keys: Sequence[str]) -> None:
    """In the caller's transaction: the records `keys` are owed no more."""
    if keys:
        rows = [{"pipeline": pipeline, "key": key} for key in keys]
        conn.exec_driver_sql(named(conn, _SETTLE), rows)


def owed_keys(conn: Connection, pipeline: str) -> dict[str, int]:
    """Every record key `pipeline` owes, with the run it last failed in: those tried
    longest ago first (a run that fetches only some again takes others the next time)."""
    found = conn.exec_driver_sql(named(conn, _KEYS), {"pipeline": pipeline}).all()
    return {str(key): int(run_id) for key, run_id in found}


def count_outstanding(conn: Connection, pipeline: str | None = None) -> dict[str, int]:
    """How many records each pipeline (state key) owes; one pipeline's, or all that owe."""
    sql = "SELECT pipeline, COUNT(*) FROM interlink_outstanding"
    params: dict[str, Any] = {}
    if pipeline is not None:
        sql += " WHERE pipeline = :pipeline"
        params["pipeline"] = pipeline
    sql += " GROUP BY pipeline ORDER BY pipeline"
    return {str(name): int(count) for name, count in conn.exec_driver_sql(named(conn, sql), params)}


def list_outstanding(
    conn: Connection,
    pipeline: str | None = None,
    keys: Sequence[str] = (),
    *,
    limit: int | None = None,
) -> list[Outstanding]:
    """The records owed, oldest failure first: one pipeline's (only `keys`, if given), or
    every pipeline's; at most `limit`."""
    sql = f"SELECT {_COLUMNS} FROM interlink_outstanding"
    where: list[str] = []
    params: dict[str, Any] = {}
    if pipeline is not None:
        where.append("pipeline = :pipeline")
        params["pipeline"] = pipeline
    if keys:
        wanted = list(dict.fromkeys(keys))
        if len(wanted) > _MARKS:  # more than a statement takes: pick them out here
            found = list_outstanding(conn, pipeline, limit=None)
            chosen = set(wanted)
            picked = [row for row in found if row.record_key in chosen]
            return picked if limit is None else picked[:limit]
        marks = []
        for at, key in enumerate(wanted):
            marks.append(f":k{at}")
            params[f"k{at}"] = key
        where.append(f"record_key IN ({', '.join(marks)})")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY first_failed_at, pipeline, record_key"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = conn.exec_driver_sql(named(conn, sql), params).all()
    return [
        Outstanding(str(p), str(k), int(r), str(s), str(e), float(f), float(la), int(a))
        for p, k, r, s, e, f, la, a in rows
    ]


def forget_outstanding(
    conn: Connection, pipeline: str, keys: Sequence[str] | None = None
) -> list[str]:
    """In the caller's transaction: give up records `keys` of `pipeline` (None: all it
    owes); returns the keys that were owed and are forgotten now."""
    owed = owed_keys(conn, pipeline)
    gone = list(owed) if keys is None else [key for key in dict.fromkeys(keys) if key in owed]
    settle(conn, pipeline, gone)
    return gone
