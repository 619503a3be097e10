"""The job that processes one stored delivery: kind `webhook.process`."""

from __future__ import annotations

from interlink.jobs import JobSpec

__all__ = ["PROCESS_KIND", "process_job"]

PROCESS_KIND = "webhook.process"


def process_job(delivery: int, source: str, *, max_attempts: int | None = None) -> JobSpec:
    """The job that dispatches the stored delivery with row id `delivery` (of `source`)."""
    return JobSpec(
        PROCESS_KIND, {"delivery": delivery, "source": source}, max_attempts=max_attempts
    )
