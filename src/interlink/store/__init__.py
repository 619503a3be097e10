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
from ._store import COUNTERS, PipelineState, Store, owner_alive
from ._tables import ColumnKind, TableWriter, WriteCounts, infer_kind

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
    "take_rate_limit",
    "verify_api_key",
    "COUNTERS",
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
    "ColumnKind",
    "PipelineState",
    "Store",
    "TableWriter",
    "WriteCounts",
    "create_engine",
    "infer_kind",
    "metadata",
    "owner_alive",
]
