"""Pipelines: source resource -> filter -> field mapping -> destination, with checkpoints."""

from ._api_sink import ApiSink, BatchOutcome
from ._conflicts import Decision, decide, newer
from ._filter import FilterError, compile_filter
from ._mapping import FieldMapping, MappingError, compile_mapping
from ._resolve import resolve
from ._runner import Progress, RunResult, run_pipeline
from ._sql_sink import SqlSink

__all__ = [
    "ApiSink",
    "BatchOutcome",
    "Decision",
    "FieldMapping",
    "FilterError",
    "MappingError",
    "Progress",
    "RunResult",
    "SqlSink",
    "compile_filter",
    "compile_mapping",
    "decide",
    "newer",
    "resolve",
    "run_pipeline",
]
