"""One INFO line when a worker starts a job and one when the attempt ends, for both
queues (SQLite and Procrastinate): what `interlink worker` and `interlink serve` print.

```
job 12 started: pipeline customers, attempt 1 of 3
job 12 completed in 1.42 s: pipeline customers, run 7: 120 read, 20 created, 100 updated
job 13 attempt 1 of 3 failed, retrying in 2.0s: ServerError: ...   (the queue's own line)
job 13 attempt 1 of 3 ended in 0.31 s: pipeline crm; next attempt in 2.0 s
```
"""

from __future__ import annotations

import logging
from typing import Any

from ._model import Job
from ._queue import Outcome

__all__ = ["job_finished", "job_started"]

log = logging.getLogger("interlink.jobs")

_COUNTS = ("read", "created", "updated", "deleted", "failed")
_ERROR_SHOWN = 300


def _what(job: Job) -> str:
    if job.pipeline:
        account = job.args.get("account") if isinstance(job.args, dict) else None
        return f"pipeline {job.pipeline}" + (f"@{account}" if account else "")
    return f"{job.kind} job"


def job_started(job: Job) -> None:
    """Log that this worker starts an attempt of `job`."""
    if log.isEnabledFor(logging.INFO):
        log.info(
            "job %s started: %s, attempt %s of %s",
            job.id,
            _what(job),
            job.attempts,
            job.max_attempts,
        )


def _counts(result: dict[str, Any] | None) -> str:
    """`run 7: 120 read, 20 created, 100 updated` from a pipeline job's result."""
    if not isinstance(result, dict):
        return ""
    accounts = result.get("accounts")
    if isinstance(accounts, list):
        return f"{len(accounts)} accounts"
    counts = result.get("counts")
    if not isinstance(counts, dict):
        return ""
    shown = [f"{counts[name]:,} {name}" for name in _COUNTS if counts.get(name)]
    run = result.get("run_id")
    text = ", ".join(shown) or "nothing read"
    return f"run {run}: {text}" if run is not None else text


def job_finished(job: Job, outcome: Outcome, elapsed: float) -> None:
    """Log how the attempt of `job` ended: completed with its counts, failed or retried
    with the error (and the wait before the next attempt), or cancelled."""
    if not log.isEnabledFor(logging.INFO):
        return
    what = _what(job)
    error = " ".join((outcome.error or "").split())[:_ERROR_SHOWN]
    if outcome.status == "completed":
        counts = _counts(outcome.result)
        log.info(
            "job %s completed in %.2f s: %s%s", job.id, elapsed, what, f", {counts}" * bool(counts)
        )
    elif outcome.status == "retry":
        # The queue logged the error with its retry already (`execute`): not twice.
        log.info(
            "job %s attempt %s of %s ended in %.2f s: %s; next attempt in %.1f s",
            job.id,
            job.attempts,
            job.max_attempts,
            elapsed,
            what,
            outcome.delay,
        )
    elif outcome.status == "failed":
        log.warning("job %s failed in %.2f s: %s: %s", job.id, elapsed, what, error or "failed")
    else:
        log.info("job %s %s in %.2f s: %s: %s", job.id, outcome.status, elapsed, what, error)
