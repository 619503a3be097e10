"""Pipelines: source resource -> filter -> field mapping -> destination, with checkpoints."""

from ._api_sink import ApiSink, BatchOutcome
from ._column_kinds import ColumnKind, as_text, infer_kind
from ._conflicts import Decision, decide, newer
from ._filter import FilterError, compile_filter
from ._mapping import FieldMapping, MappingError, compile_mapping
from ._records import check_records, run_records
from ._resolve import resolve
from ._runner import Progress, RunResult, run_pipeline
from ._sink import BatchCounts, Sink, WritePlan
from ._sql_sink import SqlSink
from ._table_writer import SchemaChange, TableWriter, WriteCounts

__all__ = [
    "ApiSink",
    "BatchCounts",
    "BatchOutcome",
    "ColumnKind",
    "Decision",
    "FieldMapping",
    "FilterError",
    "MappingError",
    "Progress",
    "RunResult",
    "SchemaChange",
    "Sink",
    "SqlSink",
    "TableWriter",
    "WriteCounts",
    "WritePlan",
    "as_text",
    "check_records",
    "compile_filter",
    "compile_mapping",
    "decide",
    "infer_kind",
    "newer",
    "resolve",
    "run_pipeline",
    "run_records",
]
