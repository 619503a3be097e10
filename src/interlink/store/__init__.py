"""Storage: the configured database (SQLite or PostgreSQL) for interlink's state and for
records synced into tables."""

from ._engine import create_engine
from ._schema import SCHEMA_VERSION, metadata
from ._store import COUNTERS, PipelineState, Store
from ._tables import ColumnKind, TableWriter, WriteCounts, infer_kind

__all__ = [
    "COUNTERS",
    "SCHEMA_VERSION",
    "ColumnKind",
    "PipelineState",
    "Store",
    "TableWriter",
    "WriteCounts",
    "create_engine",
    "infer_kind",
    "metadata",
]
