"""Pipelines: source resource -> filter -> field mapping -> destination, with checkpoints."""

import typing as _typing

from interlink._lazy import lazy_exports as _lazy_exports

from ._accounts import (
    ALL_ACCOUNTS,
    CatalogOpener,
    account_table,
    acting_account,
    connected_accounts,
    require_connected,
    source_connection,
    split_key,
    state_key,
    table_part,
)
from ._column_kinds import ColumnKind, as_text, infer_kind
from ._conflicts import Decision, decide, newer
from ._each_account import AccountRun, run_each_account
from ._filter import FilterError, compile_filter
from ._give_up import GivenUp, give_up
from ._mapping import FieldMapping, MappingError, compile_mapping
from ._records import check_records, run_records
from ._run_record import Progress, RunResult
from ._runner import run_pipeline
from ._sink import BatchCounts, Sink, WritePlan
from ._sql_sink import SqlSink
from ._table_writer import SchemaChange, TableWriter, WriteCounts

if _typing.TYPE_CHECKING:
    from ._api_sink import ApiSink, BatchOutcome
    from ._forget import Forgotten, bindings_pipeline, forget
    from ._resolve import resolve

# Loaded on first use: an API destination's bindings and conflicts are SQLAlchemy
# statements, which a run into an SQLite table never loads.
_LAZY = {
    "ApiSink": "._api_sink",
    "BatchOutcome": "._api_sink",
    "Forgotten": "._forget",
    "bindings_pipeline": "._forget",
    "forget": "._forget",
    "resolve": "._resolve",
}


__getattr__ = _lazy_exports(__name__, _LAZY)


__all__ = [
    "ALL_ACCOUNTS",
    "AccountRun",
    "ApiSink",
    "BatchCounts",
    "BatchOutcome",
    "CatalogOpener",
    "ColumnKind",
    "Decision",
    "FieldMapping",
    "FilterError",
    "Forgotten",
    "GivenUp",
    "MappingError",
    "Progress",
    "RunResult",
    "SchemaChange",
    "Sink",
    "SqlSink",
    "TableWriter",
    "WriteCounts",
    "WritePlan",
    "account_table",
    "acting_account",
    "as_text",
    "bindings_pipeline",
    "check_records",
    "compile_filter",
    "compile_mapping",
    "connected_accounts",
    "decide",
    "forget",
    "give_up",
    "infer_kind",
    "newer",
    "require_connected",
    "resolve",
    "run_each_account",
    "run_pipeline",
    "run_records",
    "source_connection",
    "split_key",
    "state_key",
    "table_part",
]
