"""Decide how a run reads and writes, from the pipeline, its stored state and the flags.

Pure: the runner loads the state, asks `plan_read`, and follows the answer.

- A read interrupted while reading the whole source is resumed from its checkpoint, even
  under `--full-refresh` (a retried job continues, never starts over on top of itself).
- An interrupted incremental read resumes from its checkpoint, unless a full read is asked.
- `write: replace` always reads the whole source; so does a first run, `--full-refresh`
  and `incremental: false`.
- A full read of a `replace` table, and a full refresh of an `append` table, load into a
  staging table swapped in at the end (`SqlSink`).
- A trial (`--limit`) reads what a run would, from the start of that read, and resumes
  nothing.
- State made for other source settings (another fingerprint) is used by nothing: the run
  stops with StateMismatchError, or reads the whole source under
  `on_source_change: full_refresh`. So is state made under another `filter:` (the part of
  the fingerprint after `FILTER_MARK`): records the old filter left out are older than the
  cursor, and an incremental read would never bring them. State stored before the filter
  was part of it, or before a filter was added, is kept: adding a filter skips nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from interlink.config import PipelineConfig
from interlink.errors import StateMismatchError
from interlink.store import PipelineState

from ._sink import WritePlan

__all__ = ["FILTER_MARK", "ReadPlan", "filter_fingerprint", "plan_read"]

FILTER_MARK = "+filter:"
"""Separates the source's fingerprint from its pipeline filter's in a stored fingerprint."""


@dataclass(frozen=True)
class ReadPlan:
    """Where the read starts and how its batches are written."""

    since: Any
    """The incremental cursor to read from; None reads the whole source."""
    resume: dict[str, Any] | None
    """A checkpoint to continue an interrupted read from."""
    write: WritePlan
    note: str | None = None
    """Something the user should know about this plan (shown with the run's warnings)."""


def filter_fingerprint(source: str, filter_spec: Any) -> str:
    """The fingerprint stored with a pipeline's state: its source's, and its filter's."""
    if filter_spec is None:
        return source
    encoded = orjson.dumps(filter_spec, option=orjson.OPT_SORT_KEYS, default=str)
    return f"{source}{FILTER_MARK}{hashlib.sha256(encoded).hexdigest()[:12]}"


def _mismatch(state: PipelineState, fingerprint: str) -> str | None:
    """What changed since the state was stored ("source", "filter"), or None."""
    has_state = state.cursor is not None or state.interrupted
    stored = state.fingerprint
    if not has_state or stored is None or stored == fingerprint:
        return None
    stored_source, marked, _ = stored.partition(FILTER_MARK)
    source = fingerprint.partition(FILTER_MARK)[0]
    if stored_source != source:
        return "source"
    # Stored without a filter part (no filter then, or an interlink before it counted):
    # a filter added keeps fewer records, it never skips one.
    return "filter" if marked else None


def plan_read(
    name: str,
    pipeline: PipelineConfig,
    state: PipelineState,
    *,
    fingerprint: str,
    incremental: bool,
    full_refresh: bool,
    trial: bool,
) -> ReadPlan:
    """The plan of one run of pipeline `name`; `incremental` says whether its source can
    read changes only (see the module docstring for the rules)."""
    note = None
    fresh_only = False
    changed = _mismatch(state, fingerprint)
    if changed:
        if full_refresh:
            fresh_only = True
        elif pipeline.on_source_change == "full_refresh":
            full_refresh = fresh_only = True
            what = "source's settings" if changed == "source" else "pipeline's filter"
            note = (
                f"the {what} changed since its cursor was stored "
                "(on_source_change: full_refresh): reading it whole"
            )
        elif changed == "filter":
            raise StateMismatchError(
                f"pipelines.{name.partition('@')[0]}.filter changed since the cursor was "
                "stored: records the old filter left out are older than that cursor, so an "
                "incremental read would never bring them; run again with --full-refresh "
                "(or set on_source_change: full_refresh)",
                pipeline=name,
            )
        else:
            raise StateMismatchError(
                "the source's path, params, pagination, records or incremental settings "
                "changed since its cursor was stored, so that cursor may skip records; run "
                "again with --full-refresh (or set on_source_change: full_refresh)",
                pipeline=name,
            )
    replace = pipeline.write == "replace"
    incremental = incremental and pipeline.incremental and not replace

    def staged(full: bool) -> bool:
        return full and (replace or (pipeline.write == "append" and full_refresh))

    if trial:
        since = None if (full_refresh or not incremental) else state.cursor
        full = since is None
        plan = WritePlan(full=full, staged=staged(full), resumed=False, trial=True)
        return ReadPlan(since, None, plan, note)
    if state.interrupted and not fresh_only:
        if state.full_read:
            plan = WritePlan(full=True, staged=state.staged, resumed=True)
            return ReadPlan(None, state.checkpoint, plan, note)
        if not full_refresh and incremental:
            plan = WritePlan(full=state.read_since is None, staged=False, resumed=True)
            return ReadPlan(state.read_since, state.checkpoint, plan, note)
    full = full_refresh or not incremental or state.cursor is None
    since = None if full else state.cursor
    return ReadPlan(since, None, WritePlan(full=full, staged=staged(full), resumed=False), note)
