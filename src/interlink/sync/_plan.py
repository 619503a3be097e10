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
  The same holds for the `fields:` mapping (after `FIELDS_MARK`): rows synced under
  another mapping keep their old fields until their records change, so a read of changes
  only would leave them so; a whole read (`write: replace`, `incremental: false`) does not
  care, and a resumed one does (its first part was written with the old mapping).
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

__all__ = ["FIELDS_MARK", "FILTER_MARK", "ReadPlan", "filter_fingerprint", "plan_read"]

FILTER_MARK = "+filter:"
"""Separates the source's fingerprint from its pipeline filter's in a stored fingerprint."""
FIELDS_MARK = "+fields:"
"""Then the pipeline's `fields:` mapping's (last, after the filter's when there is one)."""


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


def filter_fingerprint(source: str, filter_spec: Any, fields: Any = None) -> str:
    """The fingerprint stored with a pipeline's state: its source's, its filter's (when
    it has one) and its `fields:` mapping's (when given)."""
    fingerprint = source
    if filter_spec is not None:
        fingerprint += f"{FILTER_MARK}{_digest(filter_spec)}"
    if fields is not None:
        fingerprint += f"{FIELDS_MARK}{_digest(fields)}"
    return fingerprint


def _digest(value: Any) -> str:
    encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(encoded).hexdigest()[:12]


def _parts(fingerprint: str) -> tuple[str, str | None, str | None]:
    """(source, filter digest or None, fields digest or None) of a stored fingerprint."""
    rest, marked, fields = fingerprint.partition(FIELDS_MARK)
    source, filtered, filter_digest = rest.partition(FILTER_MARK)
    return source, filter_digest if filtered else None, fields if marked else None


def _mismatch(state: PipelineState, fingerprint: str) -> str | None:
    """What changed since the state was stored ("source", "filter", "fields"), or None."""
    has_state = state.cursor is not None or state.interrupted
    stored = state.fingerprint
    if not has_state or stored is None or stored == fingerprint:
        return None
    stored_source, stored_filter, stored_fields = _parts(stored)
    source, filter_digest, fields_digest = _parts(fingerprint)
    if stored_source != source:
        return "source"
    # Stored without a filter part (no filter then, or an interlink before it counted):
    # a filter added keeps fewer records, it never skips one.
    if stored_filter is not None and stored_filter != filter_digest:
        return "filter"
    # Stored without a fields part: an interlink before the mapping counted; kept.
    if stored_fields is not None and stored_fields != fields_digest:
        return "fields"
    return None


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
    reads_changes = incremental and pipeline.incremental and pipeline.write != "replace"
    if changed == "fields" and not state.interrupted and not reads_changes:
        changed = None  # a whole read writes every record with the new mapping anyway
    if changed:
        if full_refresh:
            fresh_only = True
        elif pipeline.on_source_change == "full_refresh":
            full_refresh = fresh_only = True
            what = {
                "source": "source's settings",
                "filter": "pipeline's filter",
                "fields": "pipeline's fields",
            }[changed]
            note = (
                f"the {what} changed since its cursor was stored "
                "(on_source_change: full_refresh): reading it whole"
            )
        elif changed == "fields":
            raise StateMismatchError(
                f"pipelines.{name.partition('@')[0]}.fields changed since the cursor was "
                "stored: the records synced before it keep their old fields until they "
                "change at the source, so the destination would not match it; run again "
                "with --full-refresh (or set on_source_change: full_refresh)",
                pipeline=name,
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
