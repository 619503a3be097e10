"""What a job is: `JobSpec` (what to enqueue) and `Job` (a row of the queue as it stands)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PIPELINE_KIND",
    "TERMINAL",
    "job_type",
    "Job",
    "JobFilter",
    "JobSpec",
    "JobStatus",
    "pipeline_job",
    "retry_delay",
]

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
"""A job in one of these states never changes again. `failed` is the dead letter: every
attempt was used, or the error was one that trying again cannot fix."""

PIPELINE_KIND = "pipeline.run"


def job_type(kind: str) -> str:
    """A kind as the jobs API's `type` names it: `pipeline` for `pipeline.run`, else itself."""
    return "pipeline" if kind == PIPELINE_KIND else kind


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to enqueue.

    ```python
    queue.enqueue(JobSpec("pipeline.run", {"pipeline": "customers"}, lock="pipeline:customers"))
    ```
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    """Higher runs first; equal priorities run in the order they were enqueued."""
    max_attempts: int | None = None
    """None: the queue's `jobs.max_attempts`."""
    lock: str | None = None
    """At most one job holding a given lock runs at a time (the others wait)."""
    pipeline: str | None = None
    delay: float = 0.0
    """Seconds from now before the job may run."""
    idempotency_key: str | None = None
    """Enqueueing again with the same key returns the job the first call made."""


def pipeline_job(
    pipeline: str,
    *,
    account: str | None = None,
    full_refresh: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    priority: int = 0,
) -> JobSpec:
    """The job that runs `pipeline` once; one at a time per pipeline (per account, for a
    job that names one). `account` is the connected account it acts for, or `*` for each
    in turn; None leaves it to the pipeline's `account:` when the job runs."""
    args: dict[str, Any] = {"pipeline": pipeline}
    lock = f"pipeline:{pipeline}"
    if account is not None:
        args["account"] = account
        if account != "*":
            # A lock names at most 200 characters; two long accounts sharing one only wait.
            lock = f"{lock}@{account}"[:200]
    if full_refresh:
        args["full_refresh"] = True
    if dry_run:
        args["dry_run"] = True
    if limit is not None:
        args["limit"] = limit
    return JobSpec(PIPELINE_KIND, args, priority=priority, lock=lock, pipeline=pipeline)


@dataclass(frozen=True, slots=True)
class Job:
    """One job as the queue has it now."""

    id: int
    kind: str
    args: dict[str, Any]
    status: JobStatus
    priority: int
    attempts: int
    max_attempts: int
    lock: str | None
    pipeline: str | None
    run_at: float
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    cancel_requested: bool = False
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        """The job as the jobs API shows it (times as epoch seconds)."""
        return {
            "id": self.id,
            "type": job_type(self.kind),
            "kind": self.kind,
            "pipeline": self.pipeline,
            "args": self.args,
            "status": self.status,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "created_at": self.created_at,
            "run_at": self.run_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "cancel_requested": self.cancel_requested,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs `Queue.list` returns: newest first, `limit` at most, ids below `before`."""

    status: JobStatus | None = None
    pipeline: str | None = None
    kind: str | None = None
    limit: int = 50
    before: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 1000 or (self.before is not None and self.before < 1):
            raise ValueError("limit is 1..1000 and before a job id")


def retry_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait after failed attempt `attempt`: exponential from `base`, capped,
    with "equal jitter" (AWS, "Exponential Backoff and Jitter"): half the step fixed, half
    random, so retries spread out yet never come back at once. `jitter` is in [0, 1)."""
    ceiling = min(cap, base * math.pow(2.0, max(attempt - 1, 0)))
    return ceiling * (0.5 + 0.5 * jitter)
