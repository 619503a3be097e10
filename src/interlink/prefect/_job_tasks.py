"""Prefect tasks for jobs on a remote `interlink serve`: submit one, wait for one, or both.

```python
from interlink.prefect import run_job

counts = run_job("customers", full_refresh=True, timeout=3600)   # submit, then wait
```

The server and its key come from the arguments or, as for `interlink jobs`, from
`INTERLINK_URL` and `INTERLINK_API_KEY` in the environment of the process that runs the
task: a key passed as a flow parameter would be stored with the flow run in Prefect, so
prefer the environment or a Prefect Secret block read inside the flow. The job's own
retries (`jobs.max_attempts` on the server) and the client's (5xx and connection errors,
with the same idempotency key) are the only ones: the tasks are made with `retries=0`.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from interlink.client import JobsClient

from ._artifacts import artifact_key, publish_counts
from ._counts import RunCounts
from ._errors import PipelineRunError

__all__ = ["SERVER_URL_ENV", "API_KEY_ENV", "run_job", "submit_job", "wait_for_job"]

SERVER_URL_ENV = "INTERLINK_URL"
API_KEY_ENV = "INTERLINK_API_KEY"


def _client(server_url: str | None, api_key: str | None) -> JobsClient:
    url = server_url or os.environ.get(SERVER_URL_ENV)
    key = api_key or os.environ.get(API_KEY_ENV)
    if not url:
        raise ValueError(f"no server: pass server_url or set {SERVER_URL_ENV}")
    if not key:
        raise ValueError(f"no API key: pass api_key or set {API_KEY_ENV}")
    return JobsClient(url, key)


@task(
    name="interlink-submit-job", retries=0, cache_policy=NO_CACHE, task_run_name="submit {pipeline}"
)
def submit_job(
    pipeline: str,
    *,
    server_url: str | None = None,
    api_key: str | None = None,
    account: str | None = None,
    full_refresh: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    priority: int = 0,
    idempotency_key: str | None = None,
) -> int:
    """Queue a run of `pipeline` on the server; the job's id.

    Pass `idempotency_key` (the flow run's id and the pipeline, say) to make the submit
    safe to repeat: the server answers a repeated key with the job it made the first time.
    """
    with _client(server_url, api_key) as client:
        job = client.submit_job(
            pipeline,
            account=account,
            full_refresh=full_refresh,
            dry_run=dry_run,
            limit=limit,
            priority=priority,
            idempotency_key=idempotency_key,
        )
    job_id = int(job["job_id"])
    get_run_logger().info("%s: job %d queued at %s", pipeline, job_id, client.base_url)
    return job_id


@task(
    name="interlink-wait-for-job",
    retries=0,
    cache_policy=NO_CACHE,
    task_run_name="wait for job {job_id}",
)
def wait_for_job(
    job_id: int,
    *,
    server_url: str | None = None,
    api_key: str | None = None,
    timeout: float | None = 3600.0,
    poll_interval: float = 1.0,
    max_interval: float = 10.0,
    fail_on_record_errors: bool = True,
) -> RunCounts:
    """Wait until job `job_id` is completed, failed or cancelled; its `RunCounts`.

    The task fails with `PipelineRunError` (the job's error as its message) when the job
    failed or was cancelled, or when records failed unless `fail_on_record_errors` is
    False; with `interlink.errors.JobTimeoutError` after `timeout` seconds (the job goes
    on; None waits for ever).
    """
    with _client(server_url, api_key) as client:
        job = client.wait_for_job(
            job_id, timeout=timeout, poll_interval=poll_interval, max_interval=max_interval
        )
    return _finish(job, fail_on_record_errors)


@task(name="interlink-job", retries=0, cache_policy=NO_CACHE, task_run_name="job {pipeline}")
def run_job(
    pipeline: str,
    *,
    server_url: str | None = None,
    api_key: str | None = None,
    account: str | None = None,
    full_refresh: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    priority: int = 0,
    idempotency_key: str | None = None,
    timeout: float | None = 3600.0,
    poll_interval: float = 1.0,
    max_interval: float = 10.0,
    fail_on_record_errors: bool = True,
) -> RunCounts:
    """`submit_job` then `wait_for_job`, in one task: a pipeline run on the server."""
    with _client(server_url, api_key) as client:
        created = client.submit_job(
            pipeline,
            account=account,
            full_refresh=full_refresh,
            dry_run=dry_run,
            limit=limit,
            priority=priority,
            idempotency_key=idempotency_key,
        )
        job_id = int(created["job_id"])
        get_run_logger().info("%s: job %d queued at %s", pipeline, job_id, client.base_url)
        job = client.wait_for_job(
            job_id, timeout=timeout, poll_interval=poll_interval, max_interval=max_interval
        )
    return _finish(job, fail_on_record_errors)


def _finish(job: dict[str, Any], fail_on_record_errors: bool) -> RunCounts:
    counts = RunCounts.from_job(job)
    logger = get_run_logger()
    logger.info("job %s: %s", counts.job_id, counts.summary())
    publish_counts(
        [counts],
        key=artifact_key(counts.pipeline or "job"),
        description=f"interlink job {counts.job_id} (pipeline {counts.pipeline}): {counts.status}",
    )
    if counts.status == "completed_with_errors" and not fail_on_record_errors:
        return counts
    if not counts.ok:
        raise PipelineRunError(counts)
    return counts
