"""Storage: the configured database (SQLite or PostgreSQL) for interlink's state and for
records synced into tables."""

from ._apikeys import (
    SCOPES,
    ApiKey,
    ApiKeyScope,
    CreatedApiKey,
    create_api_key,
    hash_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)
from ._bindings import (
    Binding,
    add_conflict,
    conflict,
    list_conflicts,
    load_bindings,
    resolve_conflict,
    save_bindings,
)
from ._engine import create_engine
from ._migrate import SchemaStatus, schema_status, upgrade_schema
from ._ratelimits import RateDecision, peek_rate_limit, prune_rate_limits, take_rate_limit
from ._schema import (
    JOB_STATUSES,
    SCHEMA_VERSION,
    api_keys,
    jobs,
    metadata,
    rate_limits,
    schedules,
)
from ._store import COUNTERS, LOCK_LEASE, PipelineState, Store, owner_may_be_alive

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiKeyScope",
    "CreatedApiKey",
    "RateDecision",
    "create_api_key",
    "hash_api_key",
    "list_api_keys",
    "peek_rate_limit",
    "prune_rate_limits",
    "revoke_api_key",
    "schema_status",
    "take_rate_limit",
    "upgrade_schema",
    "verify_api_key",
    "COUNTERS",
    "LOCK_LEASE",
    "Binding",
    "add_conflict",
    "conflict",
    "list_conflicts",
    "load_bindings",
    "resolve_conflict",
    "save_bindings",
    "JOB_STATUSES",
    "SCHEMA_VERSION",
    "api_keys",
    "jobs",
    "rate_limits",
    "schedules",
    "PipelineState",
    "SchemaStatus",
    "Store",
    "create_engine",
    "metadata",
    "owner_may_be_alive",
]
