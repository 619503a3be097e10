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

from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from interlink.client import JobsClient
from prefect import task

from ._artifacts import artifact_key, publish_counts
from ._counts import RunCounts
from ._errors import PipelineRunError
from ._logs import run_logger

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

    The server answers a repeated idempotency key with the job it made the first time. By
    default the key is the task run's, so a Prefect retry of this task (one you added)
    gets the job the first attempt queued, or queues a new one if that job failed or was
    cancelled: never two live jobs for one task run. Pass `idempotency_key` to choose it
    (the server then always answers it with its first job).
    """
    with _client(server_url, api_key) as client:
        return _submit(
            client,
            pipeline,
            idempotency_key,
            account=account,
            full_refresh=full_refresh,
            dry_run=dry_run,
            limit=limit,
            priority=priority,
        )


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
    False; with `JobWaitTimeoutError` (a `JobTimeoutError` and a built-in `TimeoutError`)
    after `timeout` seconds (the job goes on; None waits for ever).
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
    """`submit_job` then `wait_for_job`, in one task: a pipeline run on the server.

    A Prefect retry of this task (one you added) waits for the job the first attempt
    queued while it goes on, and queues a new one only after it failed or was cancelled
    (see `submit_job`)."""
    with _client(server_url, api_key) as client:
        job_id = _submit(
            client,
            pipeline,
            idempotency_key,
            account=account,
            full_refresh=full_refresh,
            dry_run=dry_run,
            limit=limit,
            priority=priority,
        )
        job = client.wait_for_job(
            job_id, timeout=timeout, poll_interval=poll_interval, max_interval=max_interval
        )
    return _finish(job, fail_on_record_errors)


_ENDED_BADLY = frozenset({"failed", "cancelled"})


def _submit(client: JobsClient, pipeline: str, idempotency_key: str | None, **options: Any) -> int:
    """Queue the job; its id. Without a key of the caller's, attempt N of a task run
    resends the keys of attempts 1..N-1 first (the server answers each with its job) and
    takes the first job that has not failed or been cancelled: a retry waits for a job
    still going rather than starting a second one."""
    keys = [idempotency_key] if idempotency_key is not None else _attempt_keys()
    for key in keys:
        job = client.submit_job(pipeline, idempotency_key=key, **options)
        if job.get("status") not in _ENDED_BADLY:
            break
    job_id = int(job["job_id"])
    run_logger().info("%s: job %d queued at %s", pipeline, job_id, client.base_url)
    return job_id


def _attempt_keys() -> list[str | None]:
    """The idempotency keys of this task run's attempts so far, the current one last; a
    fresh key (None: the client makes one) outside a task run."""
    context = TaskRunContext.get()
    if context is None or context.task_run is None:
        return [None]
    attempts = max(1, int(context.task_run.run_count or 1))
    base = f"prefect-task-run-{context.task_run.id}"
    return [base if n == 1 else f"{base}-attempt-{n}" for n in range(1, attempts + 1)]


def _finish(job: dict[str, Any], fail_on_record_errors: bool) -> RunCounts:
    counts = RunCounts.from_job(job)
    logger = run_logger()
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
