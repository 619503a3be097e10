"""The job that processes one stored delivery: kind `webhook.process`."""

from __future__ import annotations

from interlink.jobs import JobSpec

__all__ = ["BATCH_SIZE", "PROCESS_KIND", "batch_job", "process_job"]

PROCESS_KIND = "webhook.process"
BATCH_SIZE = 50
"""At most this many deliveries of one commit in one job (worker concurrency spreads the
rest)."""


def process_job(
    delivery: int, source: str, *, max_attempts: int | None = None, delay: float = 0.0
) -> JobSpec:
    """The job that dispatches the stored delivery with row id `delivery` (of `source`):
    a replay, or a retry of one delivery of a batch."""
    return JobSpec(
        PROCESS_KIND,
        {"delivery": delivery, "source": source},
        max_attempts=max_attempts,
        delay=delay,
    )


def batch_job(deliveries: list[int], source: str) -> JobSpec:
    """The job that dispatches deliveries stored in one commit, one after the other. A
    delivery whose action fails gets a job of its own (`process_job`) for its retries, so
    one failure neither holds up nor repeats the others."""
    return JobSpec(PROCESS_KIND, {"deliveries": deliveries, "source": source})
