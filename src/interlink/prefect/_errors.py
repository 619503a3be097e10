"""The errors that fail a Prefect task or flow: a run that did not go through.

Both are `interlink.errors.SyncError`s whose message is interlink's own reason, so the
task run's state in Prefect says why (`pipeline customers failed: the read ended short
of the total...`), never "Completed" for a run that lost records. They pickle, as
Prefect may keep a failed state's exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlink.errors import SyncError

from ._counts import RunCounts

__all__ = ["PipelineRunError", "PipelinesFailedError"]


class PipelineRunError(SyncError):
    """A pipeline run (in process, or a job on a server) failed, was cancelled, or had
    records that could not be written; `counts` is what it did."""

    def __init__(self, counts: RunCounts) -> None:
        self.counts = counts
        where = f"job {counts.job_id}: " if counts.job_id is not None else ""
        reason = counts.reason()
        if where and reason.startswith(where):
            where = ""
        super().__init__(f"{counts.status}: {where}{reason}", pipeline=counts.label)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.counts,))


class PipelinesFailedError(SyncError):
    """Pipelines of a `run_pipelines` flow failed; those after them were not run.
    `runs` holds every pipeline's counts, by name."""

    def __init__(self, runs: Mapping[str, RunCounts]) -> None:
        self.runs = dict(runs)
        failed = [run for run in self.runs.values() if run.status not in ("succeeded", "not_run")]
        skipped = [run.pipeline for run in self.runs.values() if run.status == "not_run"]
        reasons = "; ".join(f"{run.label} {run.status}: {run.reason()}" for run in failed)
        message = f"{len(failed)} of {len(self.runs)} pipelines failed ({reasons})"
        if skipped:
            message += f"; not run, as they run after a failed one: {', '.join(skipped)}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.runs,))
