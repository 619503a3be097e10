"""The SQL text of interlink's books (`Store`): runs, pipeline state, locks, record errors
and schema changes, written with `:name` parameters (`store._connection.named` gives
psycopg its marks) and no `%`; and how a run's row reads back as SQLAlchemy's types gave
it (`run_row`)."""

from __future__ import annotations

from typing import Any

from ._connection import Connection, load_json

__all__ = [
    "ADD_ERROR",
    "ADD_LOCK",
    "ADD_SCHEMA_CHANGE",
    "BEGIN_RUN",
    "COUNTERS",
    "COUNTER_LIST",
    "CRASHED",
    "DROP_LOCK",
    "FINISH_RUN",
    "FINISH_STOPPED_RUN",
    "MAX_ERRORS_KEPT",
    "NO_READ",
    "READ_LOCK",
    "READ_STATE",
    "RENEW",
    "RUN_COUNTERS",
    "RUN_FLAGS",
    "RUN_JSON",
    "SAVE_COUNTS",
    "SAVE_STATE",
    "STATE_COLUMNS",
    "STATE_FLAGS",
    "STATE_JSON",
    "TAKE_OVER",
    "escape_like",
    "run_row",
]

COUNTERS = ("pages", "read", "created", "updated", "unchanged", "deleted", "failed", "skipped")
MAX_ERRORS_KEPT = 20

RUN_FLAGS = ("full_refresh", "dry_run", "resumed", "trial")
"""interlink_runs' boolean columns (read back as 0 and 1 from SQLite)."""
RUN_JSON = ("errors", "warnings")
"""interlink_runs' JSON columns (read back as text from SQLite)."""
STATE_JSON = ("cursor", "read_since", "checkpoint", "pending_cursor")
STATE_FLAGS = ("full_read", "staged")

COUNTER_LIST = ", ".join(COUNTERS)
BEGIN_RUN = (
    f"INSERT INTO interlink_runs (pipeline, status, started_at, full_refresh, dry_run, trial, "
    f"resumed, errors, owner, {COUNTER_LIST}) VALUES (:pipeline, 'running', :now, "
    f":full_refresh, :dry_run, :trial, :resumed, :errors, :owner, "
    + ", ".join(f":{name}" for name in COUNTERS)
    + ")"
)
SAVE_STATE = (
    "UPDATE interlink_state SET read_since = :read_since, checkpoint = :checkpoint, "
    "pending_cursor = :pending_cursor, fingerprint = :fingerprint, full_read = :full_read, "
    "staged = :staged, run_id = :run_id, updated_at = :at WHERE pipeline = :pipeline"
)
SAVE_COUNTS = (
    "UPDATE interlink_runs SET "
    + ", ".join(f"{name} = :{name}" for name in COUNTERS)
    + " WHERE id = :run_id"
)
SAVE_PROGRESS_PG = f"WITH counted AS ({SAVE_COUNTS}) {SAVE_STATE}"
"""`SAVE_COUNTS` and `SAVE_STATE` in one statement (one round trip, once a page, on
PostgreSQL); its row count is the state's."""
RENEW = (
    "UPDATE interlink_locks SET expires_at = :expires "
    "WHERE pipeline = :pipeline AND run_id = :run_id"
)
READ_LOCK = "SELECT run_id, owner, expires_at FROM interlink_locks WHERE pipeline = :pipeline"
ADD_LOCK = (
    "INSERT INTO interlink_locks (pipeline, run_id, owner, expires_at) "
    "VALUES (:pipeline, :run_id, :owner, :expires) ON CONFLICT (pipeline) DO NOTHING"
)
TAKE_OVER = (
    "UPDATE interlink_locks SET run_id = :run_id, owner = :owner, expires_at = :expires "
    "WHERE pipeline = :pipeline AND run_id = :held AND expires_at = :held_expires"
)
CRASHED = (
    "UPDATE interlink_runs SET status = 'crashed', finished_at = :now, message = :message "
    "WHERE id = :run_id AND status = 'running'"
)
DROP_LOCK = "DELETE FROM interlink_locks WHERE pipeline = :pipeline AND run_id = :run_id"


def _finish_run(counter: str) -> str:
    return (
        "UPDATE interlink_runs SET status = :status, finished_at = :now, errors = :errors, "
        "message = :message, resumed = :resumed, warnings = :warnings, "
        + ", ".join(counter.format(name=name) for name in COUNTERS)
        + " WHERE id = :run_id"
    )


FINISH_RUN = _finish_run("{name} = :{name}")
FINISH_STOPPED_RUN = {
    "sqlite": _finish_run("{name} = max({name}, :{name})"),
    "postgresql": _finish_run("{name} = GREATEST({name}, :{name})"),
}
"""A run stopped before its end keeps, of each counter, the greater of what its caller
counted and what its last committed transaction stored: a stop signal raised between a
batch's commit and the caller taking in its counts leaves the caller one batch short."""
RUN_COUNTERS = "SELECT " + ", ".join(COUNTERS) + " FROM interlink_runs WHERE id = :run_id"
READ_STATE = (
    "SELECT cursor, read_since, checkpoint, pending_cursor, fingerprint, full_read, staged, "
    "run_id FROM interlink_state WHERE pipeline = :pipeline"
)
STATE_COLUMNS = (
    "cursor",
    "read_since",
    "checkpoint",
    "pending_cursor",
    "fingerprint",
    "full_read",
    "staged",
    "run_id",
)
ADD_ERROR = (
    "INSERT INTO interlink_record_errors (run_id, pipeline, record_key, step, error, "
    "created_at) VALUES (:run_id, :pipeline, :key, :step, :error, :now)"
)
ADD_SCHEMA_CHANGE = (
    "INSERT INTO interlink_schema_changes (table_name, column_name, column_type, "
    "previous_type, run_id, created_at) VALUES (:table, :column, :column_type, :previous, "
    ":run_id, :now)"
)
# The state's columns when no read is under way.
NO_READ: dict[str, Any] = {
    "read_since": None,
    "checkpoint": None,
    "pending_cursor": None,
    "full_read": False,
    "staged": False,
}


def run_row(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    """A row of interlink_runs as SQLAlchemy's types would give it."""
    for name in RUN_FLAGS:
        if row.get(name) is not None:
            row[name] = bool(row[name])
    for name in RUN_JSON:
        if name in row:
            row[name] = load_json(conn, row[name])
    return row


def escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")
