"""The one queue interface both backends implement, and what a job's code receives.

```
Queue (protocol)             SqliteQueue (_sqlite_queue.py)   ProcrastinateQueue (_procrastinate.py)
  enqueue(spec, conn=None)     interlink_jobs is the queue      interlink_jobs + a Procrastinate job
  get / list / cancel / counts                                  deferred in the same transaction
  work(kinds, concurrency, stop)  lease + heartbeat worker      Procrastinate's worker
JobKinds                      kind name -> async handler(JobContext) -> result dict
execute(job, handler, ctx)    one attempt -> Outcome (completed | retry | failed | cancelled)
```

Enqueueing with `conn=` writes the job in the caller's open transaction (the outbox
pattern): the job exists exactly when the caller's own rows commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import sqlalchemy as sa

from interlink.config import InterlinkConfig, JobsConfig
from interlink.errors import (
    AccountsFailedError,
    ApiError,
    AuthError,
    ConfigError,
    ConnectionDisabledError,
    ForbiddenError,
    IncompleteReadError,
    IncrementalError,
    JobCancelledError,
    NotFoundError,
    OAuthError,
    PaginationError,
    PipelineLockedError,
    StateMismatchError,
)

from ._model import Job, JobFilter, JobSpec, retry_delay

__all__ = [
    "JobContext",
    "JobHandler",
    "JobKinds",
    "Outcome",
    "Queue",
    "WorkerStats",
    "execute",
    "final_attempt",
    "holder_of",
    "warn_lease_lost",
]

log = logging.getLogger("interlink.jobs")


class JobContext:
    """What a running job's code gets: the job, the config, and two calls.

    `should_stop()` is true once the job was cancelled, its worker is shutting down, or its
    worker lost the job's lease (another worker runs it now, and whatever this attempt
    still returns is discarded); a long job checks it between batches and stops (raise
    `JobCancelledError`). `report()` records progress that `GET /jobs/{id}` shows; the
    worker saves it at most every half second.
    """

    def __init__(
        self,
        job: Job,
        config: InterlinkConfig,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        report: Callable[[dict[str, Any]], None] = lambda progress: None,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.job = job
        self.config = config
        self._should_stop = should_stop
        self._report = report
        self.services: Mapping[str, Any] = services or {}
        """Shared objects the worker hands to every job (the `Store`, as "store")."""

    def should_stop(self) -> bool:
        return self._should_stop()

    def report(self, progress: dict[str, Any]) -> None:
        self._report(progress)


JobHandler = Callable[[JobContext], Awaitable[dict[str, Any] | None]]
"""A job kind's code: returns the job's result (a JSON object) or None."""


class JobKinds(Mapping[str, JobHandler]):
    """The registry of job kinds a worker runs, by name.

    ```python
    kinds = JobKinds.default()          # pipeline.run, noop
    kinds.register("report.email", send_report)
    ```
    """

    def __init__(self, handlers: Mapping[str, JobHandler] | None = None) -> None:
        self._handlers: dict[str, JobHandler] = dict(handlers or {})

    @classmethod
    def default(cls) -> JobKinds:
        from ._kinds import BUILTIN_KINDS

        return cls(BUILTIN_KINDS)

    def register(self, name: str, handler: JobHandler) -> None:
        self._handlers[name] = handler

    def __getitem__(self, name: str) -> JobHandler:
        return self._handlers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, and what the queue does next."""

    status: Literal["completed", "retry", "failed", "cancelled"]
    result: dict[str, Any] | None = None
    error: str | None = None
    delay: float = 0.0
    """For `retry`: seconds before the next attempt."""
    spent: bool = True
    """For `retry`: False when the attempt is given back, because the job only waited (for
    its pipeline's lock) and tried nothing."""


# Errors that trying again cannot fix: the job is dead-lettered at once.
_FATAL: tuple[type[BaseException], ...] = (ConfigError, LookupError, TypeError)

# OAuth token-endpoint errors that trying again cannot fix (RFC 6749 section 5.2).
_OAUTH_PERMANENT = frozenset(
    {
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "invalid_scope",
        "access_denied",
        # interlink's own: the vault holds a grant the token endpoint refused before.
        "needs_reauth",
    }
)


def permanent(exc: BaseException) -> bool:
    """Whether trying the job again cannot help: the credentials were refused (401 after
    the token refresh, an OAuth client or grant the token endpoint rejects), the account
    may not do this (403), the resource's path does not exist (404), or the pipeline
    needs the user (a changed source, a missing incremental field, a refused link, a
    connection switched off)."""
    if isinstance(exc, AccountsFailedError):
        # Every account again only if one of them may pass this time.
        return bool(exc.causes) and all(
            isinstance(cause, _FATAL) or permanent(cause) for cause in exc.causes
        )
    if isinstance(exc, IncompleteReadError):
        return False  # the data moved under the read: the next attempt may well be whole
    if isinstance(exc, AuthError | ForbiddenError | NotFoundError | ConnectionDisabledError):
        return True
    if isinstance(exc, OAuthError):
        return exc.error in _OAUTH_PERMANENT
    return isinstance(exc, StateMismatchError | IncrementalError | PaginationError)


def final_attempt(job: Job, exc: BaseException) -> bool:
    """Whether `execute` ends `job` as `failed` (dead-lettered) when this attempt raised
    `exc`: the error is one that trying again cannot fix, or no attempt is left. A job's
    code that keeps a status of its own (the webhook inbox) records the same ending."""
    if isinstance(exc, JobCancelledError | PipelineLockedError | asyncio.CancelledError):
        return False
    if isinstance(exc, _FATAL) or permanent(exc):
        return True
    return job.attempts >= job.max_attempts


async def execute(
    job: Job,
    kinds: Mapping[str, JobHandler],
    context: JobContext,
    settings: JobsConfig,
    *,
    jitter: Callable[[], float] = random.random,
) -> Outcome:
    """Run one attempt of `job` (its `attempts` already counts this one) and say what next.

    An unknown kind, a configuration error or a permanent failure (`permanent`: refused
    credentials, 403, 404, a changed source...) fails the job at once; any other error is
    retried with backoff until `max_attempts`, then the job is dead-lettered (`failed`).
    An API error that says when to come back (`RateLimitedError.retry_after`, from a 429's
    Retry-After) is retried no sooner than that: the server's wait when it is longer than
    the backoff. A pipeline locked by a run outside the queue (`interlink run` in a
    terminal) is not a try: the job waits a few seconds and the attempt is given back, so
    it is never dead-lettered for that.
    """
    handler = kinds.get(job.kind)
    if handler is None:
        known = ", ".join(sorted(kinds)) or "none"
        return Outcome("failed", error=f"unknown job kind {job.kind!r}; known: {known}")
    try:
        result = await handler(context)
    except JobCancelledError:
        return Outcome("cancelled", error="cancelled while running")
    except asyncio.CancelledError:
        raise
    except PipelineLockedError as exc:
        delay = min(settings.retry_delay, _LOCK_WAIT)
        log.info("job %s waits for its pipeline's lock, again in %.1fs: %s", job.id, delay, exc)
        return Outcome("retry", error=_describe(exc), delay=delay, spent=False)
    except _FATAL as exc:
        return Outcome("failed", error=_describe(exc))
    except Exception as exc:
        error = _describe(exc)
        if permanent(exc):
            return Outcome("failed", error=f"{error} (permanent: not retried)")
        if job.attempts >= job.max_attempts:
            noun = "attempt" if job.max_attempts == 1 else "attempts"
            return Outcome("failed", error=f"{error} (gave up after {job.attempts} {noun})")
        delay = retry_delay(
            job.attempts, base=settings.retry_delay, cap=settings.retry_max_delay, jitter=jitter()
        )
        wait = _server_wait(exc)
        if wait is not None and wait > delay:
            delay = wait
        log.info(
            "job %s attempt %s failed, retrying in %.1fs: %s", job.id, job.attempts, delay, error
        )
        return Outcome("retry", error=error, delay=delay)
    return Outcome("completed", result=result)


_LOCK_WAIT = 5.0
"""At most this many seconds between two looks at a pipeline's lock."""


def _server_wait(exc: BaseException) -> float | None:
    """Seconds the remote API asked us to wait (Retry-After), from `exc` or what caused it."""
    seen: BaseException | None = exc
    for _ in range(5):  # a short chain: an error re-raised with `from` by a few layers
        if seen is None:
            return None
        retry_after = getattr(seen, "retry_after", None) if isinstance(seen, ApiError) else None
        if isinstance(retry_after, int | float) and retry_after > 0:
            return float(retry_after)
        seen = seen.__cause__
    return None


def holder_of(worker: str | None, status: str | None) -> str:
    """Who holds a job whose lease a worker lost, from the job's row, for the log."""
    if status == "running" and worker:
        return worker
    return f"none (the job is {status} now)" if status else "none (the job is gone)"


def warn_lease_lost(job_id: int, holder: str) -> None:
    log.warning("job %s: lease lost to worker %s; its result is discarded", job_id, holder)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class WorkerStats:
    """What a worker did while it ran."""

    completed: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    reclaimed: int = 0
    """Jobs taken over from a worker whose lease ran out."""
    waited: int = 0
    """Attempts given back because the job's pipeline was locked by a run outside the queue."""
    lost: int = 0
    """Attempts whose lease this worker lost while they ran: their results were discarded."""
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, outcome: Outcome) -> None:
        """Count one acknowledged attempt of a job of `kind`."""
        if outcome.status == "completed":
            self.completed += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        elif outcome.status == "retry":
            if outcome.spent:
                self.retried += 1
            else:
                self.waited += 1
        elif outcome.status == "failed":
            self.failed += 1
        else:
            self.cancelled += 1


class Queue(Protocol):
    """A durable job queue in the configured database.

    Both backends keep each job in `interlink_jobs`, so `get`/`list`/`counts` read the
    same rows whichever one runs them. Methods are synchronous (they are short database
    statements); `work` is the async worker loop.
    """

    backend: ClassVar[str]

    def enqueue(self, spec: JobSpec, *, conn: sa.Connection | None = None) -> Job:
        """Add a job; with `conn`, inside that open transaction (committed by the caller)."""
        ...

    def enqueue_many(self, specs: Sequence[JobSpec], conn: sa.Connection) -> list[int]:
        """Add several jobs in the caller's open transaction, in a few statements; their ids
        in the order of `specs`. For callers that batch (the webhook inbox); specs with an
        idempotency key are refused (ValueError): use `enqueue` for those."""
        ...

    def get(self, job_id: int) -> Job | None: ...

    def list(self, query: JobFilter | None = None) -> list[Job]: ...

    def cancel(self, job_id: int) -> Job | None:
        """Cancel: a queued job never runs; a running one is asked to stop at its next
        batch. Finished jobs are returned unchanged; None when there is no such job."""
        ...

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        ...

    async def work(
        self,
        kinds: JobKinds,
        *,
        concurrency: int = 1,
        stop: asyncio.Event | None = None,
        burst: bool = False,
    ) -> WorkerStats:
        """Run jobs until `stop` is set (or, with `burst`, until none is ready)."""
        ...

    def close(self) -> None: ...
