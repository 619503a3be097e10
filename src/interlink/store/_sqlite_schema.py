"""interlink's tables on a new SQLite file, made with `sqlite3` alone: the statements
SQLAlchemy's `metadata.create_all` emits for SQLite at the newest revision, kept here as
text laid out to be read (only whitespace differs). tests/store/test_sqlite_schema.py
fails, printing the new text, when `_schema.py` changes and this does not. So a first
run into a new file does not load SQLAlchemy.

`create_sqlite_at_head` does what `store._migrate` does for a file without interlink's
tables, under the same locks: the lock file beside the database (`<file>-schema.lock`),
then the file's write lock (`BEGIN IMMEDIATE`), the revision read again once both are
held. A file with older tables is left to `store._migrate`, which upgrades it with Alembic.
"""

from __future__ import annotations

import logging
import sqlite3

from ._revision import HEAD, VERSION_TABLE
from ._sqlite_file import schema_lock, set_pragmas

__all__ = ["CREATE_AT_HEAD", "SCHEMA_SQL", "create_sqlite_at_head"]

log = logging.getLogger("interlink.store")

SCHEMA_SQL = """\
CREATE TABLE interlink_runs (
    id INTEGER NOT NULL,
    pipeline VARCHAR(200) NOT NULL,
    status VARCHAR(32) NOT NULL,
    started_at FLOAT NOT NULL,
    finished_at FLOAT,
    full_refresh BOOLEAN NOT NULL,
    dry_run BOOLEAN NOT NULL,
    resumed BOOLEAN NOT NULL,
    pages INTEGER NOT NULL,
    read INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    errors JSON NOT NULL,
    message TEXT,
    owner VARCHAR(200),
    deleted INTEGER DEFAULT 0 NOT NULL,
    warnings JSON,
    trial BOOLEAN DEFAULT 0 NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_interlink_runs_pipeline ON interlink_runs (pipeline);

CREATE TABLE interlink_state (
    pipeline VARCHAR(200) NOT NULL,
    cursor JSON,
    read_since JSON,
    checkpoint JSON,
    pending_cursor JSON,
    run_id INTEGER,
    updated_at FLOAT NOT NULL,
    fingerprint TEXT,
    full_read BOOLEAN DEFAULT 0 NOT NULL,
    staged BOOLEAN DEFAULT 0 NOT NULL,
    PRIMARY KEY (pipeline)
);

CREATE TABLE interlink_locks (
    pipeline VARCHAR(200) NOT NULL,
    run_id INTEGER NOT NULL,
    owner VARCHAR(200) NOT NULL,
    expires_at FLOAT NOT NULL,
    PRIMARY KEY (pipeline)
);

CREATE TABLE interlink_record_errors (
    id INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    pipeline VARCHAR(200) NOT NULL,
    record_key TEXT,
    step VARCHAR(20) NOT NULL,
    error TEXT NOT NULL,
    created_at FLOAT NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_interlink_record_errors_run_id ON interlink_record_errors (run_id);

CREATE TABLE interlink_schema_changes (
    id INTEGER NOT NULL,
    table_name VARCHAR(200) NOT NULL,
    column_name VARCHAR(200) NOT NULL,
    column_type VARCHAR(50) NOT NULL,
    run_id INTEGER,
    created_at FLOAT NOT NULL,
    previous_type VARCHAR(50),
    PRIMARY KEY (id)
);

CREATE TABLE interlink_bindings (
    pipeline VARCHAR(200) NOT NULL,
    source_key VARCHAR(500) NOT NULL,
    target_key VARCHAR(500) NOT NULL,
    source_version TEXT,
    target_version TEXT,
    synced_at FLOAT NOT NULL,
    PRIMARY KEY (pipeline, source_key)
);

CREATE INDEX ix_interlink_bindings_target ON interlink_bindings (pipeline, target_key);

CREATE TABLE interlink_conflicts (
    id INTEGER NOT NULL,
    pipeline VARCHAR(200) NOT NULL,
    source_key VARCHAR(500) NOT NULL,
    target_key VARCHAR(500) NOT NULL,
    source_version TEXT,
    source_record JSON NOT NULL,
    target_record JSON NOT NULL,
    status VARCHAR(20) NOT NULL,
    resolution VARCHAR(20),
    run_id INTEGER,
    created_at FLOAT NOT NULL,
    resolved_at FLOAT,
    PRIMARY KEY (id)
);

CREATE INDEX ix_interlink_conflicts_pipeline ON interlink_conflicts (pipeline);

CREATE TABLE interlink_jobs (
    id INTEGER NOT NULL,
    kind VARCHAR(100) NOT NULL,
    args JSON NOT NULL,
    status VARCHAR(20) NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    lock VARCHAR(200),
    pipeline VARCHAR(200),
    run_at FLOAT NOT NULL,
    created_at FLOAT NOT NULL,
    started_at FLOAT,
    finished_at FLOAT,
    lease_until FLOAT,
    worker VARCHAR(200),
    cancel_requested BOOLEAN NOT NULL,
    progress JSON,
    result JSON,
    error TEXT,
    backend_id BIGINT,
    idempotency_key VARCHAR(200),
    PRIMARY KEY (id)
);

CREATE INDEX ix_interlink_jobs_pipeline
    ON interlink_jobs (pipeline, id)
    WHERE pipeline IS NOT NULL;

CREATE INDEX ix_interlink_jobs_status ON interlink_jobs (status, id);

CREATE INDEX ix_interlink_jobs_running
    ON interlink_jobs (lease_until)
    WHERE status = 'running';

CREATE UNIQUE INDEX ux_interlink_jobs_idempotency_key
    ON interlink_jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE INDEX ix_interlink_jobs_ready
    ON interlink_jobs (priority DESC, id)
    WHERE status = 'queued';

CREATE TABLE interlink_api_keys (
    id INTEGER NOT NULL,
    name VARCHAR(200) NOT NULL,
    prefix VARCHAR(32) NOT NULL,
    key_hash VARCHAR(64) NOT NULL,
    scope VARCHAR(20) NOT NULL,
    created_at FLOAT NOT NULL,
    last_used_at FLOAT,
    revoked_at FLOAT,
    PRIMARY KEY (id),
    UNIQUE (key_hash)
);

CREATE TABLE interlink_rate_limits (
    bucket VARCHAR(300) NOT NULL,
    tat FLOAT NOT NULL,
    PRIMARY KEY (bucket)
);

CREATE TABLE interlink_schedules (
    pipeline VARCHAR(200) NOT NULL,
    cron VARCHAR(200) NOT NULL,
    last_tick FLOAT NOT NULL,
    last_job_id INTEGER,
    PRIMARY KEY (pipeline)
);

CREATE TABLE interlink_webhook_deliveries (
    id INTEGER NOT NULL,
    source VARCHAR(100) NOT NULL,
    delivery_id VARCHAR(300) NOT NULL,
    event_type VARCHAR(300),
    status VARCHAR(20) NOT NULL,
    received_at FLOAT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    body BLOB NOT NULL,
    headers JSON NOT NULL,
    job_id INTEGER,
    result JSON,
    processed_at FLOAT,
    PRIMARY KEY (id),
    CONSTRAINT ux_interlink_webhook_deliveries_id UNIQUE (source, delivery_id)
);

CREATE INDEX ix_interlink_webhook_deliveries_status
    ON interlink_webhook_deliveries (status, id);

CREATE TABLE interlink_webhook_rejections (
    id INTEGER NOT NULL,
    source VARCHAR(100) NOT NULL,
    reason VARCHAR(40) NOT NULL,
    status INTEGER NOT NULL,
    message TEXT NOT NULL,
    address VARCHAR(100),
    received_at FLOAT NOT NULL,
    PRIMARY KEY (id)
);

CREATE INDEX ix_interlink_webhook_rejections_source
    ON interlink_webhook_rejections (source, id);

CREATE TABLE interlink_oauth_tokens (
    id INTEGER NOT NULL,
    connection VARCHAR(200) NOT NULL,
    account VARCHAR(200) NOT NULL,
    ciphertext TEXT NOT NULL,
    expires_at FLOAT,
    status VARCHAR(20) NOT NULL,
    last_error TEXT,
    version INTEGER NOT NULL,
    created_at FLOAT NOT NULL,
    updated_at FLOAT NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ux_interlink_oauth_tokens_account UNIQUE (connection, account)
);

CREATE TABLE interlink_vault (
    name VARCHAR(50) NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at FLOAT NOT NULL,
    rotated_at FLOAT,
    PRIMARY KEY (name)
);

CREATE TABLE interlink_oauth_flows (
    id VARCHAR(40) NOT NULL,
    connection VARCHAR(200) NOT NULL,
    account VARCHAR(200) NOT NULL,
    ticket_hash VARCHAR(64),
    state_hash VARCHAR(64),
    session_hash VARCHAR(64),
    verifier TEXT,
    redirect_uri TEXT NOT NULL,
    status VARCHAR(20) NOT NULL,
    connected_account VARCHAR(200),
    error TEXT,
    created_by VARCHAR(200),
    created_at FLOAT NOT NULL,
    expires_at FLOAT NOT NULL,
    finished_at FLOAT,
    PRIMARY KEY (id),
    UNIQUE (ticket_hash),
    UNIQUE (state_hash)
);

CREATE INDEX ix_interlink_oauth_flows_connection
    ON interlink_oauth_flows (connection, created_at);

CREATE TABLE interlink_connection_switches (
    connection VARCHAR(200) NOT NULL,
    account VARCHAR(200) NOT NULL,
    reason TEXT,
    disabled_by VARCHAR(200),
    disabled_at FLOAT NOT NULL,
    PRIMARY KEY (connection, account)
);

CREATE TABLE interlink_dashboard_sessions (
    token_hash VARCHAR(64) NOT NULL,
    key_id INTEGER NOT NULL,
    created_at FLOAT NOT NULL,
    seen_at FLOAT NOT NULL,
    PRIMARY KEY (token_hash)
);

CREATE INDEX ix_interlink_dashboard_sessions_key ON interlink_dashboard_sessions (key_id);

CREATE TABLE interlink_outstanding (
    pipeline VARCHAR(200) NOT NULL,
    record_key TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    step VARCHAR(20) NOT NULL,
    error TEXT NOT NULL,
    first_failed_at FLOAT NOT NULL,
    failed_at FLOAT NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (pipeline, record_key)
);

CREATE TABLE interlink_alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT interlink_alembic_version_pkc PRIMARY KEY (version_num)
);
"""

CREATE_AT_HEAD: tuple[str, ...] = tuple(
    statement.strip() for statement in SCHEMA_SQL.split(";") if statement.strip()
)


def create_sqlite_at_head(path: str) -> bool:
    """Make interlink's tables at `HEAD` in the SQLite file at `path` when it has none;
    True when the file is at `HEAD` afterwards (made here, or by another process first),
    False when it holds older tables (or newer ones) for `store._migrate` to deal with."""
    with schema_lock(path):
        connection = sqlite3.connect(path, timeout=10, isolation_level=None)
        try:
            set_pragmas(connection)  # the first connection: it switches the file to WAL
            connection.execute("BEGIN IMMEDIATE")
            try:
                made = _create(connection, path)
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()
    return made


def _create(connection: sqlite3.Connection, path: str) -> bool:
    tables = {
        name
        for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if VERSION_TABLE in tables:
        found = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        return found == [(HEAD,)]
    if "interlink_runs" in tables:
        return False  # made before the schema was versioned: an upgrade
    for statement in CREATE_AT_HEAD:
        connection.execute(statement)
    connection.execute(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (?)", (HEAD,))
    log.info("created interlink's tables in %s at revision %s", path, HEAD)
    return True
