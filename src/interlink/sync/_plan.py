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
  `on_source_change: full_refresh`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interlink.config import PipelineConfig
from interlink.errors import StateMismatchError
from interlink.store import PipelineState

from ._sink import WritePlan

__all__ = ["ReadPlan", "plan_read"]


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


def _mismatch(state: PipelineState, fingerprint: str) -> bool:
    has_state = state.cursor is not None or state.interrupted
    return has_state and state.fingerprint is not None and state.fingerprint != fingerprint


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
    if _mismatch(state, fingerprint):
        if full_refresh:
            fresh_only = True
        elif pipeline.on_source_change == "full_refresh":
            full_refresh = fresh_only = True
            note = (
                "the source's settings changed since its cursor was stored "
                "(on_source_change: full_refresh): reading it whole"
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
