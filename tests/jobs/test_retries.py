"""When a failed job runs again (issue 10), on both backends: a Retry-After from the API
sets the time, and a wait for the pipeline's lock is not an attempt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.errors import (
    ApiError,
    AuthError,
    ForbiddenError,
    IncompleteReadError,
    IncrementalError,
    NotFoundError,
    OAuthError,
    RateLimitedError,
    ServerError,
    StateMismatchError,
    TransportError,
)
from interlink.jobs import (
    JobContext,
    JobKinds,
    JobSpec,
    Queue,
    WorkerStats,
    open_queue,
    pipeline_job,
)
from interlink.sandbox import SandboxServer
from interlink.store import Store
from tests.jobs.procrastinate_schema import fresh_schema
from tests.slow_shop import customers_config, slow_shop

RECORDS = 120


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'retries.db'}"
        return
    request.applymarker(pytest.mark.postgres)
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_retries") as url:
        yield url


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with slow_shop(RECORDS) as server:
        yield server


@pytest.fixture
def open_() -> Iterator[Callable[[InterlinkConfig], tuple[Store, Queue]]]:
    """`open_(config)`: its store and queue, closed at the end of the test."""
    opened: list[tuple[Store, Queue]] = []

    def opener(config: InterlinkConfig) -> tuple[Store, Queue]:
        store = Store.open(config.database)
        opened.append((store, open_queue(config, store)))
        return opened[-1]

    yield opener
    for store, queue in opened:
        queue.close()
        store.close()


def config_for(url: str, **jobs: Any) -> InterlinkConfig:
    settings: dict[str, Any] = {"retry_delay": 0.01, "retry_max_delay": 0.05, "poll_interval": 0.05}
    settings.update(jobs)
    return InterlinkConfig.model_validate({"database": url, "jobs": settings})


def failing_with(error: Exception) -> JobKinds:
    async def fail(context: JobContext) -> None:
        raise error

    kinds = JobKinds.default()
    kinds.register("fail", fail)
    return kinds


def drain(queue: Queue, kinds: JobKinds) -> WorkerStats:
    return asyncio.run(queue.work(kinds, concurrency=2, burst=True))


@pytest.mark.parametrize(
    "limited",
    [
        RateLimitedError("slow down", retry_after=3600, status_code=429),
        ServerError("down for maintenance", retry_after=3600, status_code=503),
    ],
    ids=["429", "503"],
)
def test_a_rate_limited_job_comes_back_when_the_server_said(
    database_url: str, open_, limited: ApiError
) -> None:
    """429 (or 503) with Retry-After: 3600. Backoff alone would retry after 10, 20, 40 ms
    and dead-letter the job within the second; it waits the hour instead."""
    store, queue = open_(config_for(database_url))
    job = queue.enqueue(JobSpec("fail"))
    stats = drain(queue, failing_with(limited))
    waiting = queue.get(job.id)
    assert waiting is not None and waiting.started_at is not None
    assert (waiting.status, waiting.attempts, stats.retried) == ("queued", 1, 1)
    assert 3599 <= waiting.run_at - waiting.started_at <= 3601
    assert waiting.error is not None and waiting.error.startswith(f"{type(limited).__name__}: ")
    if queue.backend == "postgresql":  # Procrastinate holds it back until the same time
        with store.engine.connect() as conn:
            scheduled = conn.execute(
                sa.text(
                    "SELECT extract(epoch FROM p.scheduled_at) FROM procrastinate_jobs p "
                    "JOIN interlink_jobs i ON i.backend_id = p.id WHERE i.id = :id"
                ),
                {"id": job.id},
            ).scalar_one()
        assert float(scheduled) == pytest.approx(waiting.run_at, abs=0.01)


@pytest.mark.parametrize(
    "error",
    [
        RateLimitedError("slow down", retry_after=1, status_code=429),
        RateLimitedError("slow down", status_code=429),
        ServerError("unavailable", status_code=503),
        TransportError("connection reset"),
    ],
    ids=["retry-after-shorter", "no-retry-after", "server-error", "transport-error"],
)
def test_other_api_errors_keep_the_backoff(database_url: str, open_, error: ApiError) -> None:
    store, queue = open_(config_for(database_url, retry_delay=100, retry_max_delay=100))
    job = queue.enqueue(JobSpec("fail"))
    drain(queue, failing_with(error))
    waiting = queue.get(job.id)
    assert waiting is not None and waiting.started_at is not None
    assert waiting.status == "queued" and waiting.attempts == 1
    # equal jitter on a 100 s step: between 50 and 100 s
    assert 49 <= waiting.run_at - waiting.started_at <= 101


def test_a_rate_limited_job_with_no_attempts_left_is_dead_lettered(
    database_url: str, open_
) -> None:
    store, queue = open_(config_for(database_url))
    job = queue.enqueue(JobSpec("fail", max_attempts=1))
    drain(queue, failing_with(RateLimitedError("slow down", retry_after=3600, status_code=429)))
    final = queue.get(job.id)
    assert final is not None and final.status == "failed" and final.attempts == 1
    assert final.error is not None and final.error.endswith("(gave up after 1 attempt)")


def test_a_job_waiting_for_its_pipelines_lock_spends_no_attempt(
    database_url: str, open_, shop: SandboxServer
) -> None:
    """`interlink run customers` in a terminal holds the pipeline's lock: the job bounces
    off it again and again, but with one attempt allowed it neither spends it nor is
    dead-lettered, and runs once the terminal's run ends."""
    config = customers_config(
        database_url,
        shop.url,
        jobs={"retry_delay": 0.05, "poll_interval": 0.05, "max_attempts": 1},
    )
    store, queue = open_(config)
    terminal = store.begin_run("customers")
    job = queue.enqueue(pipeline_job("customers"))

    async def go() -> WorkerStats:
        stop = asyncio.Event()
        task = asyncio.create_task(queue.work(JobKinds.default(), concurrency=2, stop=stop))
        try:
            waits: list[str] = []
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                seen = queue.get(job.id)
                assert seen is not None and seen.status in ("queued", "running"), seen
                assert seen.attempts == (1 if seen.status == "running" else 0), seen
                if seen.status == "queued" and seen.error:
                    waits.append(seen.error)
                await asyncio.sleep(0.02)
            assert waits and waits[-1].startswith("PipelineLockedError: pipeline customers: ")
            store.finish_run("customers", terminal, status="succeeded", counts={}, errors=[])
            deadline = time.monotonic() + 20
            while not queue.get(job.id).done:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, queue.get(job.id)
                await asyncio.sleep(0.02)
        finally:
            stop.set()
        return await task

    stats = asyncio.run(go())
    final = queue.get(job.id)
    assert final is not None
    assert (final.status, final.attempts) == ("completed", 1), final
    assert final.result is not None and final.result["counts"]["read"] == RECORDS
    assert stats.waited >= 3 and stats.completed == 1


@pytest.mark.parametrize(
    "error",
    [
        AuthError("refused after the token refresh", status_code=401),
        ForbiddenError("not allowed", status_code=403),
        NotFoundError("no such resource path", status_code=404),
        OAuthError("invalid_client", "unknown client", status_code=401),
        StateMismatchError("the source changed", pipeline="p"),
        IncrementalError("no updated_at in records"),
    ],
    ids=["401", "403", "404", "oauth-invalid-client", "state-mismatch", "incremental"],
)
def test_permanent_failures_fail_the_job_at_once(database_url: str, open_, error) -> None:
    """Issue 11: retrying cannot fix refused credentials or a missing resource; main spent
    every attempt (and hours of backoff) on them."""
    store, queue = open_(config_for(database_url))
    job = queue.enqueue(JobSpec("fail", max_attempts=5))
    drain(queue, failing_with(error))
    final = queue.get(job.id)
    assert final is not None and (final.status, final.attempts) == ("failed", 1), final
    assert final.error is not None and "permanent: not retried" in final.error


@pytest.mark.parametrize(
    "error",
    [
        OAuthError("temporarily_unavailable", status_code=503),
        IncompleteReadError("the total fell", expected=10, got=9),
    ],
    ids=["oauth-unavailable", "incomplete-read"],
)
def test_passing_failures_are_still_retried(database_url: str, open_, error) -> None:
    store, queue = open_(config_for(database_url, retry_delay=100, retry_max_delay=100))
    job = queue.enqueue(JobSpec("fail", max_attempts=5))
    drain(queue, failing_with(error))
    waiting = queue.get(job.id)
    assert waiting is not None and (waiting.status, waiting.attempts) == ("queued", 1)


def test_a_pipeline_job_with_refused_credentials_fails_at_once(
    database_url: str, open_, shop: SandboxServer
) -> None:
    """The real path: the sandbox refuses the token with 401; the job fails in one attempt."""
    config = customers_config(database_url, shop.url, jobs={"retry_delay": 0.01, "max_attempts": 5})
    raw = config.model_dump(mode="json", by_alias=True)
    raw["connections"]["shop"]["auth"] = {"type": "bearer", "token": "wrong-token"}
    raw["connections"]["shop"]["retry"] = {"max_attempts": 1}
    store, queue = open_(InterlinkConfig.model_validate(raw))
    job = queue.enqueue(pipeline_job("customers"))
    drain(queue, JobKinds.default())
    final = queue.get(job.id)
    assert final is not None and (final.status, final.attempts) == ("failed", 1), final
    assert final.error is not None and final.error.startswith("AuthError")


def test_a_run_for_every_account_is_retried_only_if_one_failure_may_pass() -> None:
    from interlink.errors import AccountsFailedError
    from interlink.jobs._queue import permanent

    reauth = OAuthError("needs_reauth", "connect it again")
    flaky = ServerError("503 from the provider", status_code=503)
    assert permanent(AccountsFailedError("x", causes=[reauth, reauth]))
    assert not permanent(AccountsFailedError("x", causes=[reauth, flaky]))
    assert not permanent(AccountsFailedError("x", causes=[]))
