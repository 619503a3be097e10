"""interlink's own tables: runs, pipeline state, locks, record errors, schema changes,
bindings and conflicts; the service's tables: jobs, API keys, rate-limit buckets and
schedules; the webhook inbox; the vault's: OAuth tokens (encrypted) and its canary; the
dashboard's signed-in sessions; and the records runs still owe their destinations.

Synced data lives in tables named by the pipelines; interlink's bookkeeping sits beside
it under the `interlink_` prefix, in the same database, so a batch of records and the
checkpoint after it commit in one transaction.

These definitions are the schema at the newest migration (`store/migrations/versions`).
A change here needs a new revision beside them that makes the same change, and
`SCHEMA_VERSION` (in `_revision.py`) set to its number; tests/store/test_schema_head.py
fails until both agree. A column added to a table that already has rows needs a
`server_default` (or to be nullable).
"""

from __future__ import annotations

import sqlalchemy as sa

from ._revision import SCHEMA_VERSION

__all__ = [
    "DELIVERY_STATUSES",
    "JOB_STATUSES",
    "SCHEMA_VERSION",
    "TOKEN_STATUSES",
    "api_keys",
    "bindings",
    "conflicts",
    "deliveries",
    "jobs",
    "locks",
    "metadata",
    "oauth_tokens",
    "rate_limits",
    "record_errors",
    "rejections",
    "runs",
    "schedules",
    "schema_changes",
    "state",
    "vault_canary",
    "oauth_flows",
    "connection_switches",
    "dashboard_sessions",
    "outstanding",
]


metadata = sa.MetaData()

runs = sa.Table(
    "interlink_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    # Revision 0002: 32 (was 20), for `completed_with_errors`.
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("full_refresh", sa.Boolean, nullable=False, default=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("resumed", sa.Boolean, nullable=False, default=False),
    sa.Column("pages", sa.Integer, nullable=False, default=0),
    sa.Column("read", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    sa.Column("unchanged", sa.Integer, nullable=False, default=0),
    sa.Column("failed", sa.Integer, nullable=False, default=0),
    sa.Column("skipped", sa.Integer, nullable=False, default=0),
    sa.Column("errors", sa.JSON, nullable=False, default=list),
    sa.Column("message", sa.Text),
    sa.Column("owner", sa.String(200)),
    # Revision 0002: rows deleted at the destination, the run's warnings, and whether it
    # was a trial (`--limit`, `--dry-run`) that leaves the state as it was.
    sa.Column("deleted", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("warnings", sa.JSON),
    sa.Column("trial", sa.Boolean, nullable=False, server_default=sa.false()),
)

state = sa.Table(
    "interlink_state",
    metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    # The incremental cursor of the last completed read.
    sa.Column("cursor", sa.JSON),
    # The cursor the unfinished read started from, where it resumes (a paginator state;
    # None when no read is pending) and the highest cursor it has seen so far; once the
    # read completed, pending_cursor keeps the highest value it saw (PipelineState.read_to).
    sa.Column("read_since", sa.JSON),
    sa.Column("checkpoint", sa.JSON),
    sa.Column("pending_cursor", sa.JSON),
    sa.Column("run_id", sa.Integer),
    sa.Column("updated_at", sa.Float, nullable=False),
    # Revision 0002: what the source resource looked like when this state was made; whether
    # the unfinished read reads the whole source; whether it loads into a staging table.
    sa.Column("fingerprint", sa.Text),
    sa.Column("full_read", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("staged", sa.Boolean, nullable=False, server_default=sa.false()),
)

locks = sa.Table(
    "interlink_locks",
    metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

record_errors = sa.Table(
    "interlink_record_errors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False, index=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("record_key", sa.Text),
    sa.Column("step", sa.String(20), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

schema_changes = sa.Table(
    "interlink_schema_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(200), nullable=False),
    sa.Column("column_name", sa.String(200), nullable=False),
    sa.Column("column_type", sa.String(50), nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    # Revision 0002: the column's type before the change (None for a new column).
    sa.Column("previous_type", sa.String(50)),
)

bindings = sa.Table(
    "interlink_bindings",
    metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("source_key", sa.String(500), primary_key=True),
    sa.Column("target_key", sa.String(500), nullable=False),
    sa.Column("source_version", sa.Text),
    sa.Column("target_version", sa.Text),
    sa.Column("synced_at", sa.Float, nullable=False),
    sa.Index("ix_interlink_bindings_target", "pipeline", "target_key"),
)

conflicts = sa.Table(
    "interlink_conflicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("source_key", sa.String(500), nullable=False),
    sa.Column("target_key", sa.String(500), nullable=False),
    sa.Column("source_version", sa.Text),
    sa.Column("source_record", sa.JSON, nullable=False),
    sa.Column("target_record", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("resolution", sa.String(20)),
    sa.Column("run_id", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("resolved_at", sa.Float),
)

# -- the service: jobs, API keys, rate limits, schedules -------------------------------------

JOB_STATUSES = ("queued", "running", "completed", "failed", "cancelled")

jobs = sa.Table(
    "interlink_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("args", sa.JSON, nullable=False, default=dict),
    # queued | running | completed | failed (dead-lettered) | cancelled
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    # At most one running job per lock ("pipeline:NAME").
    sa.Column("lock", sa.String(200)),
    # The pipeline a job runs, for filtering; None for other kinds.
    sa.Column("pipeline", sa.String(200)),
    sa.Column("run_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    # Held while running: the worker renews it; when it runs out the job is claimed again.
    sa.Column("lease_until", sa.Float),
    sa.Column("worker", sa.String(200)),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("progress", sa.JSON),
    sa.Column("result", sa.JSON),
    sa.Column("error", sa.Text),
    # The backend's own id where it keeps one (Procrastinate's job id on PostgreSQL).
    sa.Column("backend_id", sa.BigInteger),
    # A client's Idempotency-Key for POST /jobs: the same key gives back the same job.
    sa.Column("idempotency_key", sa.String(200)),
    sa.Index("ix_interlink_jobs_status", "status", "id"),
)

# Partial indexes: a job without an idempotency key or a pipeline costs them nothing, which
# matters because every enqueue commits on its own (benchmarks/jobs.py). SQLite's are
# Index objects; PostgreSQL's are the same statements run after the table is created, since
# a `postgresql_where` argument here would load SQLAlchemy's PostgreSQL dialect (~20 ms)
# into every process that imports the store, SQLite ones included (issue 15's start-up).
_PARTIAL_JOB_INDEXES = (
    ("ix_interlink_jobs_pipeline", False, ("pipeline", "id"), "pipeline IS NOT NULL"),
    (
        "ux_interlink_jobs_idempotency_key",
        True,
        ("idempotency_key",),
        "idempotency_key IS NOT NULL",
    ),
)
for _name, _unique, _columns, _where in _PARTIAL_JOB_INDEXES:
    sa.Index(
        _name,
        *(jobs.c[column] for column in _columns),
        unique=_unique,
        sqlite_where=sa.text(_where),
    ).ddl_if(dialect="sqlite")


@sa.event.listens_for(jobs, "after_create")
def _create_partial_indexes_on_postgresql(
    _table: sa.Table, connection: sa.Connection, **_: object
) -> None:
    if connection.dialect.name != "postgresql":
        return
    for name, unique, columns, where in _PARTIAL_JOB_INDEXES:
        kind = "UNIQUE INDEX" if unique else "INDEX"
        connection.exec_driver_sql(
            f"CREATE {kind} {name} ON interlink_jobs ({', '.join(columns)}) WHERE {where}"
        )


# The SQLite queue's claim scans ready jobs by priority (highest first), then in the order
# they came, and its reclaim scans running jobs. On PostgreSQL, Procrastinate's own tables
# do that work, and two more indexes would only slow every update of a job row.
sa.Index(
    "ix_interlink_jobs_ready",
    jobs.c.priority.desc(),
    jobs.c.id,
    sqlite_where=sa.text("status = 'queued'"),
).ddl_if(dialect="sqlite")
sa.Index(
    "ix_interlink_jobs_running",
    jobs.c.lease_until,
    sqlite_where=sa.text("status = 'running'"),
).ddl_if(dialect="sqlite")

api_keys = sa.Table(
    "interlink_api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    # The key's first characters, shown in listings so a key can be told apart.
    sa.Column("prefix", sa.String(32), nullable=False),
    # SHA-256 of the whole key; the key itself is shown once and never stored.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)

rate_limits = sa.Table(
    "interlink_rate_limits",
    metadata,
    # "<api key id> <METHOD> <route>": one GCRA bucket, shared by every server process.
    sa.Column("bucket", sa.String(300), primary_key=True),
    # The theoretical arrival time of the next request (GCRA), epoch seconds.
    sa.Column("tat", sa.Float, nullable=False),
)

schedules = sa.Table(
    "interlink_schedules",
    metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("cron", sa.String(200), nullable=False),
    # The last tick a job was enqueued for; missed ticks are never stacked up.
    sa.Column("last_tick", sa.Float, nullable=False),
    sa.Column("last_job_id", sa.Integer),
)

# -- webhooks: the inbox of deliveries and the log of refused ones (revision 0003) -----------

DELIVERY_STATUSES = ("pending", "processing", "processed", "failed", "ignored", "held")

deliveries = sa.Table(
    "interlink_webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # The `webhooks:` source it came to, and the sender's id for it (or sha256:<body>).
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("delivery_id", sa.String(300), nullable=False),
    sa.Column("event_type", sa.String(300)),
    # pending | processing | processed | failed (dead-lettered) | ignored | held (a
    # connection it needs is switched off: webhooks/_held.py)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    # The raw bytes as signed, and the headers verification read (no secrets among them).
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    # The `webhook.process` job that handles it (the latest one, after a replay).
    sa.Column("job_id", sa.Integer),
    # What its action did: the run job it queued or joined, the record it imported...
    sa.Column("result", sa.JSON),
    sa.Column("processed_at", sa.Float),
    sa.UniqueConstraint("source", "delivery_id", name="ux_interlink_webhook_deliveries_id"),
    sa.Index("ix_interlink_webhook_deliveries_status", "status", "id"),
)

rejections = sa.Table(
    "interlink_webhook_rejections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(100), nullable=False),
    # A reason of interlink.webhooks.REJECT_REASONS and the HTTP status answered.
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    # The refusal's message (names headers, never their values) and who sent it.
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("address", sa.String(100)),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Index("ix_interlink_webhook_rejections_source", "source", "id"),
)

# -- the vault: OAuth tokens and the key canary (revision 0004) ------------------------------

TOKEN_STATUSES = ("active", "needs_reauth")

oauth_tokens = sa.Table(
    "interlink_oauth_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection", sa.String(200), nullable=False),
    # '' for a connection's single account.
    sa.Column("account", sa.String(200), nullable=False),
    # The Fernet token of the JSON token set (access and refresh token, expiry, type,
    # scope, the raw token response); the store never sees the plaintext.
    sa.Column("ciphertext", sa.Text, nullable=False),
    # When the access token expires (epoch seconds; None when unknown), in clear for
    # listings: it tells nothing that would let anyone use the token.
    sa.Column("expires_at", sa.Float),
    # active | needs_reauth (a refresh failed for good: connect the account again)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("last_error", sa.Text),
    # Bumped by every save: a writer names the version it read (compare-and-set).
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("connection", "account", name="ux_interlink_oauth_tokens_account"),
)

vault_canary = sa.Table(
    "interlink_vault",
    metadata,
    # One row, "canary": a known value encrypted under the vault's key when the vault was
    # first used with this database, so that a wrong key is found when the vault opens.
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # When `interlink secrets rotate` last re-encrypted it.
    sa.Column("rotated_at", sa.Float),
)

# -- connecting accounts, and switching connections on and off (revision 0005) -------------

oauth_flows = sa.Table(
    "interlink_oauth_flows",
    metadata,
    # One "connect your account" attempt: made with a single-use ticket (the link a user
    # opens), started when the browser follows it (state and PKCE verifier made, bound to
    # that browser's session cookie), finished by the provider's callback. Only hashes of
    # the ticket, state and session are kept; the verifier is vault ciphertext.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("connection", sa.String(200), nullable=False),
    # The account name the user asked for ('' when the provider's answer names it, or for
    # the connection's single account).
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("ticket_hash", sa.String(64), unique=True),
    sa.Column("state_hash", sa.String(64), unique=True),
    sa.Column("session_hash", sa.String(64)),
    sa.Column("verifier", sa.Text),
    # The redirect URI the authorize request named: the token request must repeat it.
    sa.Column("redirect_uri", sa.Text, nullable=False),
    # ticket | started | exchanging | connected | failed
    sa.Column("status", sa.String(20), nullable=False),
    # The account the token was stored under, once connected.
    sa.Column("connected_account", sa.String(200)),
    sa.Column("error", sa.Text),
    sa.Column("created_by", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Index("ix_interlink_oauth_flows_connection", "connection", "created_at"),
)

connection_switches = sa.Table(
    "interlink_connection_switches",
    metadata,
    # A connection (account '') or one of its accounts switched off: its runs, jobs,
    # schedules and webhooks are refused until it is switched on again (the row deleted).
    sa.Column("connection", sa.String(200), primary_key=True),
    sa.Column("account", sa.String(200), primary_key=True),
    sa.Column("reason", sa.Text),
    sa.Column("disabled_by", sa.String(200)),
    sa.Column("disabled_at", sa.Float, nullable=False),
)

# -- the dashboard's sessions (revision 0006) ------------------------------------------------

dashboard_sessions = sa.Table(
    "interlink_dashboard_sessions",
    metadata,
    # A browser signed in to the dashboard with an API key: only the SHA-256 of the
    # session's random token (the cookie's value) is kept, never the token or the key.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    # The API key it signed in with: checked on every request, so revoking the key ends
    # its sessions at once.
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # The last request seen (written at most once a minute): the idle expiry counts from it.
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Index("ix_interlink_dashboard_sessions_key", "key_id"),
)


# -- records a run owes its destination (revision 0007) ---------------------------------------

outstanding = sa.Table(
    "interlink_outstanding",
    metadata,
    # A record that failed in a run of the pipeline (its state key: `NAME` or
    # `NAME@ACCOUNT`) and that no run has written since: the next run fetches it again by
    # id, and a run that writes it (or a whole read that no longer finds it) removes it.
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("record_key", sa.Text, primary_key=True),
    # The run it last failed in, with that failure's step and error.
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("step", sa.String(20), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("first_failed_at", sa.Float, nullable=False),
    sa.Column("failed_at", sa.Float, nullable=False),
    # How many runs it failed in.
    sa.Column("attempts", sa.Integer, nullable=False),
)
