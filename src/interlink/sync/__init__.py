"""Pipelines: source resource -> filter -> field mapping -> destination, with checkpoints."""

from ._filter import FilterError, compile_filter
from ._mapping import FieldMapping, MappingError, compile_mapping
from ._runner import Progress, RunResult, run_pipeline
from ._sql_sink import SqlSink

__all__ = [
    "FieldMapping",
    "FilterError",
    "MappingError",
    "Progress",
    "RunResult",
    "SqlSink",
    "compile_filter",
    "compile_mapping",
    "run_pipeline",
]
