"""`JobsClient`: the jobs API over `httpx.Client`, for scripts and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

import httpx

from interlink.errors import ApiError
from interlink.http import DEFAULT_TIMEOUT, RetryPolicy

from ._core import ApiCore, Call, WaitPlan, next_cursor
from ._pages import JobsPage

__all__ = ["JobsClient"]

T = TypeVar("T")


class JobsClient:
    """A client for interlink's jobs API (`interlink serve`), blocking.

    ```python
    with JobsClient("http://127.0.0.1:8000", api_key) as client:
        job = client.submit_job("customers")
        done = client.wait_for_job(job["job_id"], timeout=600)
        print(done["status"], done["result"])
    ```

    `base_url` is the server's address; `/api/v1` is added unless it is there already.
    Connection failures and 5xx answers are retried up to `max_retries` times with
    full-jitter exponential backoff, a 429 after the server's `Retry-After`; every other
    4xx raises at once. Errors are the `interlink.errors.ApiError` subclasses, built from
    the server's error envelope. `retry_policy` tunes the backoff (`base`, `cap`,
    `max_retry_after`, `jitter`; its `max_attempts` is replaced by `max_retries + 1`);
    `transport`, `sleep` and `clock` are seams for tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        retry_policy: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._core = ApiCore(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            headers=headers,
        )
        self._http = httpx.Client(transport=transport, follow_redirects=False)
        self._sleep = sleep
        self._clock = clock
        self._wall = wall

    @property
    def base_url(self) -> str:
        return self._core.base_url

    def __repr__(self) -> str:
        return f"JobsClient(base_url={self.base_url!r})"

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- jobs ------------------------------------------------------------------------------

    def submit_job(
        self,
        pipeline: str | Mapping[str, Any] | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        type: str | None = None,
        account: str | None = None,
        full_refresh: bool = False,
        dry_run: bool = False,
        limit: int | None = None,
        priority: int = 0,
        kind: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Queue a run of `pipeline`; returns `{"job_id", "status", "status_url"}`.

        Or, as the console guide writes it, `submit_job(config)` / `submit_job(config={
        "pipeline": "customers", "full_refresh": True}, type="pipeline")`: the body is
        then `{"config": {...}, "type": ...}`, and the run's fields go in the config.

        `account` is the connected account of the pipeline's source it acts for, or `"*"`
        for each in turn (default: the pipeline's `account:`).

        `kind="noop"` (with `pipeline=None`) queues a job that does nothing, to check that
        workers run.

        The request carries an `Idempotency-Key` (a new uuid4 unless you pass one), the
        same on every retry, so a resent POST never makes a second job. Pass your own key
        to make a submit safe to repeat across processes too.
        """
        return self._send(
            self._core.submit_job(
                pipeline,
                config=config,
                type=type,
                account=account,
                full_refresh=full_refresh,
                dry_run=dry_run,
                limit=limit,
                priority=priority,
                kind=kind,
                idempotency_key=idempotency_key,
            )
        )

    def get_job(self, job_id: int) -> dict[str, Any]:
        """The job as it stands (`id`, `status`, `progress`, `result`, `error`, ...)."""
        return self._send(self._core.get_job(job_id))

    get_job_status = get_job

    def list_jobs(
        self,
        *,
        status: str | None = None,
        pipeline: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> JobsPage:
        """One page of jobs, newest first; pass `page.next_before` as `before` for the next."""
        return self._send(
            self._core.list_jobs(
                status=status, pipeline=pipeline, kind=kind, limit=limit, before=before
            )
        )

    def iter_pages(
        self,
        *,
        status: str | None = None,
        pipeline: str | None = None,
        kind: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[JobsPage]:
        """Every page of jobs matching the filters, fetched as you iterate."""
        before: int | None = None
        while True:
            page = self.list_jobs(
                status=status, pipeline=pipeline, kind=kind, limit=page_size, before=before
            )
            yield page
            before = next_cursor(page, before)
            if before is None:
                return

    def iter_jobs(
        self,
        *,
        status: str | None = None,
        pipeline: str | None = None,
        kind: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every job matching the filters, newest first, across pages."""
        for page in self.iter_pages(
            status=status, pipeline=pipeline, kind=kind, page_size=page_size
        ):
            yield from page.items

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        """Ask the job to stop; returns the job.

        A queued job is cancelled at once, a running one gets `cancel_requested` and stops
        at its next batch. A finished job raises RequestRejectedError (409 CONFLICT), except
        when the 409 answers a resend of this very cancel and the job is now cancelled: then
        the first attempt did it, and the job is returned.
        """
        try:
            return self._send(self._core.cancel_job(job_id))
        except ApiError as error:
            if not self._core.resent_cancel_conflict(error):
                raise
            job = self.get_job(job_id)
            if job.get("status") != "cancelled":
                raise
            return job

    def wait_for_job(
        self,
        job_id: int,
        timeout: float | None = 300.0,
        poll_interval: float = 0.5,
        max_interval: float = 5.0,
        *,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the job until it is completed, failed or cancelled, and return it.

        Polls start `poll_interval` apart and double up to `max_interval`. A failed or
        cancelled job is returned, not raised: look at `job["status"]`. After `timeout`
        seconds (None: no limit) `JobWaitTimeoutError` is raised (a `JobTimeoutError` and a
        built-in `TimeoutError`); the job itself goes on.
        `on_update` is called with the job after every poll (progress displays).
        """
        plan = WaitPlan(job_id, timeout, poll_interval, max_interval, started=self._clock())
        while True:
            job = self._send(replace(self._core.get_job(job_id), deadline=plan.deadline))
            if on_update is not None:
                on_update(job)
            delay = plan.next_delay(job, self._clock())
            if delay is None:
                return job
            self._sleep(delay)

    # -- the rest of the API ---------------------------------------------------------------

    def list_pipelines(self) -> list[dict[str, Any]]:
        """The pipelines the server's config defines."""
        return self._send(self._core.list_pipelines())

    def list_runs(
        self, *, pipeline: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recent pipeline runs, newest first."""
        return self._send(self._core.list_runs(pipeline=pipeline, limit=limit))

    def get_run(self, run_id: int) -> dict[str, Any]:
        return self._send(self._core.get_run(run_id))

    def health(self) -> dict[str, Any]:
        return self._send(self._core.health())

    def app_status(self, name: str) -> dict[str, Any]:
        return self._send(self._core.app_status(name))

    # -- the I/O shell around the core -----------------------------------------------------

    def _send(self, call: Call[T]) -> T:
        core = self._core
        request = core.build_request(call)
        attempt = 0
        while True:
            attempt += 1
            core.fit_to_deadline(call, request, self._clock())
            started = self._clock()
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                elapsed = self._clock() - started
                delay = core.retry_delay_for_exception(call, request, exc, attempt)
                core.log_attempt(request, type(exc).__name__, elapsed, attempt, delay)
                if delay is not None or call.deadline is not None:
                    core.fit_to_deadline(call, request, self._clock())
                if delay is None:
                    # Not chained: the httpx error holds the request with its headers.
                    raise core.transport_error(exc, request, attempt) from None
                self._sleep(delay)
                continue
            elapsed = self._clock() - started
            delay = core.retry_delay_for_response(call, request, response, attempt, self._wall())
            core.log_attempt(request, response.status_code, elapsed, attempt, delay, response)
            if delay is None:
                return core.parse(call, response, attempt)
            response.close()
            self._sleep(delay)
