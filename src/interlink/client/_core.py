"""The sans-I/O core of the jobs API clients: what to send, when to retry, what came back.

`JobsClient` and `AsyncJobsClient` are thin shells around this module (httpx's own split):
each API method here returns a `Call`, a description of one request and of how to turn its
envelope into a Python value; the shells send it, ask `ApiCore` whether and how long to
wait after a failure, and hand the final response back to be parsed. Nothing here sleeps,
reads a clock or touches a socket, so every decision is tested on plain `httpx` objects.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import orjson

from interlink._version import __version__
from interlink.errors import ApiError, JobNotFoundApiError, JobTimeoutError, TransportError
from interlink.http import (
    DEFAULT_TIMEOUT,
    IDEMPOTENT_METHODS,
    Redactor,
    RetryPolicy,
    error_for_exception,
    error_for_response,
    log_headers,
    parse_retry_after,
)

from ._envelope import (
    detail_text,
    details_of,
    envelope_message,
    excerpt,
    foreign_message,
    is_error,
    is_success,
    meta_request_id,
    read_json,
)
from ._pages import JobsPage

__all__ = [
    "API_PREFIX",
    "IDEMPOTENCY_HEADER",
    "TERMINAL_STATUSES",
    "ApiCore",
    "Call",
    "JobWaitTimeoutError",
    "WaitPlan",
    "api_base_url",
    "next_cursor",
]

logger = logging.getLogger("interlink.http")
header_logger = logging.getLogger("interlink.http.headers")

T = TypeVar("T")

API_PREFIX = "/api/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
"""A job in one of these states never changes again (interlink.jobs.TERMINAL)."""


def api_base_url(base_url: str) -> str:
    """The API root for a server address: `/api/v1` is added unless it is already there.

    ```python
    api_base_url("http://127.0.0.1:8000")         # 'http://127.0.0.1:8000/api/v1'
    api_base_url("http://127.0.0.1:8000/api/v1/") # 'http://127.0.0.1:8000/api/v1'
    ```
    """
    root = base_url.strip().rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise ValueError(f"the server URL must start with http:// or https://, got {base_url!r}")
    return root if root.endswith(API_PREFIX) else root + API_PREFIX


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: the request to send and how to read the `data` of its answer."""

    method: str
    path: str
    parse: Callable[[Any, dict[str, Any]], T]
    """(data, meta) -> the value the client method returns."""
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotency_key: str | None = None
    retry_safe: bool = False
    """True for a POST that has the same effect however often it is sent (cancel)."""
    job_id: int | None = None
    """The job the route is about: a 404 then raises `JobNotFoundApiError`."""
    deadline: float | None = None
    """The client clock's time by which the call must have its answer (a wait's timeout):
    each attempt's HTTP timeout is cut to what is left, and past it `JobWaitTimeoutError`
    is raised instead of another attempt."""


def _object(data: Any, meta: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _ShapeError("an object")
    return data


def _list(data: Any, meta: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise _ShapeError("a list")
    return data


def _cursor(meta: dict[str, Any]) -> int | None:
    # The server names the cursor `next_before` (the id to pass as `before=` for the next,
    # older page); a nested `pagination` object is accepted too.
    for holder in (meta, meta.get("pagination")):
        if isinstance(holder, dict):
            value = holder.get("next_before")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def _page(data: Any, meta: dict[str, Any]) -> JobsPage:
    return JobsPage(items=_list(data, meta), next_before=_cursor(meta), meta=meta)


def next_cursor(page: JobsPage, before: int | None) -> int | None:
    """The `before=` for the page after `page` (fetched with `before`), None at the end.

    A cursor that does not move past the one just used ends the walk instead of looping.
    """
    cursor = page.next_before
    if cursor is None or not page.items:
        return None
    if before is not None and cursor >= before:
        return None
    return cursor


class _ShapeError(Exception):
    """The envelope's `data` is not what the route returns; turned into an ApiError."""

    def __init__(self, expected: str) -> None:
        self.expected = expected
        super().__init__(expected)


def _query(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _job_path(job_id: int, suffix: str = "") -> str:
    if isinstance(job_id, bool) or not isinstance(job_id, int):
        raise TypeError(f"a job id is an int, got {job_id!r}")
    return f"/jobs/{job_id}{suffix}"


class JobWaitTimeoutError(JobTimeoutError, TimeoutError):
    """`wait_for_job` gave up: a `JobTimeoutError` that is also the built-in `TimeoutError`,
    so code written to the console guide (`except TimeoutError:`) catches it too."""


POLL_GRACE = 2.0
"""Seconds past a wait's timeout the last poll may take to be answered."""


@dataclass
class WaitPlan:
    """When `wait_for_job` polls next: doubling from `poll_interval` up to `max_interval`,
    never past the deadline, and a `JobTimeoutError` once the deadline has passed.

    ```python
    plan = WaitPlan(7, timeout=10, poll_interval=0.5, max_interval=2, started=clock())
    while (delay := plan.next_delay(client.get_job(7), clock())) is not None:
        sleep(delay)
    ```
    """

    job_id: int
    timeout: float | None
    poll_interval: float
    max_interval: float
    started: float
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        if self.poll_interval <= 0 or self.max_interval < self.poll_interval:
            raise ValueError("poll_interval must be > 0 and max_interval >= poll_interval")
        if self.timeout is not None and self.timeout < 0:
            raise ValueError("timeout must be >= 0 (or None to wait for ever)")
        self._next = self.poll_interval

    @property
    def deadline(self) -> float | None:
        """The client clock's time by which a poll must have its answer (None: no
        timeout): the wait's end, and a little more for the poll sent at its end, which
        says how the job stands."""
        if self.timeout is None:
            return None
        return self.started + self.timeout + POLL_GRACE

    def next_delay(self, job: Mapping[str, Any], now: float) -> float | None:
        """Seconds to sleep before the next poll, or None when `job` has finished."""
        status = job.get("status")
        if status in TERMINAL_STATUSES:
            return None
        delay = self._next
        if self.timeout is not None:
            remaining = self.started + self.timeout - now
            if remaining <= 0:
                raise JobWaitTimeoutError(
                    f"still {status} after {self.timeout:g} s; the job goes on",
                    job_id=self.job_id,
                )
            delay = min(delay, remaining)
        self._next = min(self._next * 2, self.max_interval)
        return delay


class ApiCore:
    """Everything both clients share: request building, retry decisions, envelope parsing.

    The API key is sent as `Authorization: Bearer ...` and registered with the redactor, so
    no error message, excerpt or repr can show it.
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
    ) -> None:
        if not api_key:
            raise ValueError("an API key is required (Authorization: Bearer <api key>)")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = api_base_url(base_url)
        policy = retry_policy or RetryPolicy()
        self.policy = RetryPolicy(
            max_attempts=max_retries + 1,
            base=policy.base,
            cap=policy.cap,
            max_retry_after=policy.max_retry_after,
            jitter=policy.jitter,
        )
        self.redactor = Redactor()
        self.redactor.add_secret(api_key)
        self.headers = {
            "User-Agent": f"interlink-client/{__version__}",
            "Accept": "application/json",
            **(headers or {}),
            "Authorization": f"Bearer {api_key}",
        }
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout)
        self._timeout = timeout.as_dict()

    # -- the API, one Call per route -------------------------------------------------------

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
    ) -> Call[dict[str, Any]]:
        # One key per logical submit, generated before the first attempt: every retry of
        # this POST carries it, so the server answers a resend with the job it already made.
        key = idempotency_key or str(uuid.uuid4())
        if isinstance(pipeline, Mapping):  # the guide's client.submit_job(config)
            if config is not None:
                raise ValueError("pass the config once: positionally or as config=")
            pipeline, config = None, pipeline
        if config is not None:
            if kind is not None:
                raise ValueError("with config=, pass type= (pipeline or noop), not kind=")
            flat = {
                "pipeline": pipeline,
                "account": account,
                "full_refresh": full_refresh or None,
                "dry_run": dry_run or None,
                "limit": limit,
            }
            given = sorted(name for name, value in flat.items() if value is not None)
            if given:
                raise ValueError(
                    f"with config=, put {', '.join(given)} in the config, not beside it"
                )
            guide: dict[str, Any] = {"config": dict(config)}
            if type is not None:
                guide["type"] = type
            if priority:
                guide["priority"] = priority
            return Call("POST", "/jobs", _object, json=guide, idempotency_key=key)
        if type is not None:
            if kind is not None:
                raise ValueError("kind and type name the same thing; pass one")
            kind = {"pipeline": "pipeline.run"}.get(type, type)
        body: dict[str, Any] = {
            "full_refresh": full_refresh,
            "dry_run": dry_run,
            "priority": priority,
        }
        if pipeline is not None:
            body["pipeline"] = pipeline
        if account is not None:
            body["account"] = account
        if limit is not None:
            body["limit"] = limit
        if kind is not None:
            body["kind"] = kind
        return Call("POST", "/jobs", _object, json=body, idempotency_key=key)

    def get_job(self, job_id: int) -> Call[dict[str, Any]]:
        return Call("GET", _job_path(job_id), _object, job_id=job_id)

    def list_jobs(
        self,
        *,
        status: str | None = None,
        pipeline: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> Call[JobsPage]:
        params = _query(status=status, pipeline=pipeline, kind=kind, limit=limit, before=before)
        return Call("GET", "/jobs", _page, params=params)

    def cancel_job(self, job_id: int) -> Call[dict[str, Any]]:
        # Cancelling twice asks for the same thing, so a lost answer may be resent.
        return Call("POST", _job_path(job_id, "/cancel"), _object, retry_safe=True, job_id=job_id)

    def list_pipelines(self) -> Call[list[dict[str, Any]]]:
        return Call("GET", "/pipelines", _list)

    def list_runs(
        self, *, pipeline: str | None = None, limit: int | None = None
    ) -> Call[list[dict[str, Any]]]:
        return Call("GET", "/runs", _list, params=_query(pipeline=pipeline, limit=limit))

    def get_run(self, run_id: int) -> Call[dict[str, Any]]:
        return Call("GET", f"/runs/{int(run_id)}", _object)

    def health(self) -> Call[dict[str, Any]]:
        return Call("GET", "/health", _object)

    def app_status(self, name: str) -> Call[dict[str, Any]]:
        return Call("GET", f"/apps/{quote(name, safe='')}/status", _object)

    # -- sending ---------------------------------------------------------------------------

    def build_request(self, call: Call[Any]) -> httpx.Request:
        """The request for `call`; the shells send this same object on every attempt."""
        headers = dict(self.headers)
        if call.idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = call.idempotency_key
        content: bytes | None = None
        if call.json is not None:
            content = orjson.dumps(call.json)
            headers["Content-Type"] = "application/json"
        return httpx.Request(
            call.method,
            self.base_url + call.path,
            params=dict(call.params) if call.params else None,
            headers=headers,
            content=content,
            extensions={"timeout": self._timeout},
        )

    def fit_to_deadline(self, call: Call[Any], request: httpx.Request, now: float) -> None:
        """Cut `request`'s HTTP timeouts to the time `call` has left; past its deadline,
        `JobWaitTimeoutError` (a server that accepts and never answers cannot hold a wait
        past its timeout)."""
        if call.deadline is None:
            return
        left = call.deadline - now
        if left <= 0:
            raise JobWaitTimeoutError(
                "no answer from the server before the wait's timeout; the job goes on",
                job_id=call.job_id,
            )
        request.extensions["timeout"] = {
            name: left if value is None else min(value, left)
            for name, value in self._timeout.items()
        }

    def _resendable(self, request: httpx.Request, call: Call[Any]) -> bool:
        return (
            request.method in IDEMPOTENT_METHODS
            or call.retry_safe
            or IDEMPOTENCY_HEADER in request.headers
        )

    def retry_delay_for_response(
        self,
        call: Call[Any],
        request: httpx.Request,
        response: httpx.Response,
        attempt: int,
        now: float,
    ) -> float | None:
        """Seconds to wait before sending again after `response`, or None to stop here.

        5xx (for a request that is safe to resend) and 429 are retried with full-jitter
        backoff, or after the server's `Retry-After` when it sends one; a `Retry-After`
        above the policy's `max_retry_after` is not slept (the error says `retry_after`).
        Other 4xx are never retried. `now` is the wall clock, for a Retry-After date.
        """
        status = response.status_code
        if status < 400 or attempt >= self.policy.max_attempts:
            return None
        if not self.policy.retry_status(status, self._resendable(request, call)):
            return None
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        return self.policy.delay(attempt, retry_after)

    def retry_delay_for_exception(
        self, call: Call[Any], request: httpx.Request, exc: httpx.TransportError, attempt: int
    ) -> float | None:
        """Seconds to wait before sending again after a transport failure, or None."""
        if attempt >= self.policy.max_attempts:
            return None
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            return None
        if not self.policy.retry_exception(exc, self._resendable(request, call)):
            return None
        return self.policy.backoff(attempt)

    @staticmethod
    def resent_cancel_conflict(error: ApiError) -> bool:
        """True for a 409 to a cancel that was sent more than once: the first attempt most
        likely cancelled the job and its answer was lost, so the job is worth a look."""
        return error.status_code == 409 and error.attempts > 1

    def log_attempt(
        self,
        request: httpx.Request,
        outcome: int | str,
        elapsed: float,
        attempt: int,
        delay: float | None,
        response: httpx.Response | None = None,
    ) -> None:
        """One line per attempt on `interlink.http` (`-v`): method, URL with the key
        masked, status or error, time, attempt and any retry wait, as the HTTP layer logs
        its requests; with `-vv`, the headers sent and received, credentials masked."""
        if not logger.isEnabledFor(logging.DEBUG):
            return
        url = self.redactor.url(str(request.url))
        retry = f", retrying in {delay:.2f} s" if delay is not None else ""
        logger.debug(
            "%s %s -> %s in %.1f ms (attempt %d%s)",
            request.method,
            url,
            outcome,
            elapsed * 1000,
            attempt,
            retry,
        )
        if header_logger.isEnabledFor(logging.DEBUG):
            log_headers(self.redactor, request, url, response)

    def transport_error(
        self, exc: httpx.TransportError, request: httpx.Request, attempts: int
    ) -> TransportError:
        return error_for_exception(exc, request, attempts=attempts, redactor=self.redactor)

    # -- reading ---------------------------------------------------------------------------

    def parse(self, call: Call[T], response: httpx.Response, attempts: int) -> T:
        """The value `call` returns, or the `ApiError` for this response raised."""
        request = response.request
        if response.status_code >= 400:
            raise self.error(call, response, attempts)
        body = read_json(response)
        if not (200 <= response.status_code < 300) or not is_success(body):
            raise self._not_the_api(response, attempts, "an interlink success envelope")
        meta = body.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        try:
            return call.parse(body.get("data"), meta)
        except _ShapeError as exc:
            raise ApiError(
                f"the envelope's data is not {exc.expected}",
                method=request.method,
                url=self.redactor.url(str(request.url)),
                status_code=response.status_code,
                request_id=meta_request_id(meta) or response.headers.get("x-request-id"),
                attempts=attempts,
            ) from None

    def error(self, call: Call[Any], response: httpx.Response, attempts: int) -> ApiError:
        """The typed error for a 4xx/5xx, from the error envelope when there is one.

        The class comes from the status (`interlink.http.error_for_response`: 401 AuthError,
        403 ForbiddenError, 404 NotFoundError, 429 RateLimitedError, 5xx ServerError, other
        4xx RequestRejectedError); a 404 on a job's own route is a `JobNotFoundApiError`,
        which is both a NotFoundError and a JobNotFoundError.
        """
        generic = error_for_response(response, attempts=attempts, redactor=self.redactor)
        body = read_json(response)
        envelope = body.get("error") if is_error(body) else None
        kwargs: dict[str, Any] = {
            "method": generic.method,
            "url": generic.url,
            "status_code": generic.status_code,
            "request_id": generic.request_id,
            "body_excerpt": generic.body_excerpt,
            "attempts": attempts,
            "retryable": generic.retryable,
        }
        if isinstance(envelope, dict):
            message = envelope_message(envelope, response)
            details = details_of(envelope.get("details"))
            code = envelope.get("code")
            kwargs["error_code"] = code if isinstance(code, str) else None
            kwargs["details"] = details
            kwargs["request_id"] = meta_request_id(body.get("meta")) or generic.request_id
            if details:
                message += " (" + "; ".join(detail_text(d) for d in details) + ")"
        else:
            message = foreign_message(response)
        retry_after = getattr(generic, "retry_after", None)
        if retry_after is not None:
            kwargs["retry_after"] = retry_after
        cls: type[ApiError] = type(generic)
        message = self.redactor.text(message)
        if response.status_code == 404 and call.job_id is not None:
            return JobNotFoundApiError(message, job_id=call.job_id, **kwargs)
        return cls(message, **kwargs)

    def _not_the_api(self, response: httpx.Response, attempts: int, expected: str) -> ApiError:
        request = response.request
        status = response.status_code
        what = f"HTTP {status} {response.reason_phrase}".rstrip()
        if 300 <= status < 400 and response.headers.get("location"):
            what += f" redirecting to {self.redactor.url(response.headers['location'])}"
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        return ApiError(
            f"{what} ({kind}) is not {expected}; is the URL an interlink server?",
            method=request.method,
            url=self.redactor.url(str(request.url)),
            status_code=status,
            request_id=response.headers.get("x-request-id"),
            body_excerpt=excerpt(response, self.redactor),
            attempts=attempts,
        )
