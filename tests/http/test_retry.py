from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from interlink.errors import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    TransportError,
)
from interlink.http import ApiClient, RetryBudget, RetryPolicy

from .conftest import FakeTime

NO_JITTER = RetryPolicy(max_attempts=4, base=0.5, cap=20.0, jitter=lambda ceiling: ceiling)


def test_backoff_sequence_is_exponential_and_capped():
    policy = RetryPolicy(max_attempts=10, base=0.5, cap=5.0, jitter=lambda c: c)
    assert [policy.backoff(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_full_jitter_stays_within_zero_and_the_ceiling():
    random.seed(7)
    policy = RetryPolicy(base=1.0, cap=8.0)
    for failed in range(1, 10):
        ceiling = min(8.0, 2 ** (failed - 1))
        waits = [policy.backoff(failed) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.5  # jitter spreads over the range, not a constant


def test_retry_after_replaces_backoff_and_too_long_is_refused():
    policy = RetryPolicy(max_retry_after=60, jitter=lambda c: c)
    assert policy.delay(1, 3.0) == 3.0
    assert policy.delay(1, None) == 0.5
    assert policy.delay(1, 61.0) is None


@pytest.mark.parametrize(
    ("status", "resendable", "expected"),
    [
        (408, True, True),
        (425, True, True),
        (429, True, True),
        (429, False, True),
        (500, True, True),
        (500, False, False),
        (502, True, True),
        (502, False, False),
        (503, True, True),
        (504, True, True),
        (400, True, False),
        (401, True, False),
        (403, True, False),
        (404, True, False),
        (409, True, False),
        (422, True, False),
        (501, True, False),
    ],
)
def test_retry_status_table(status, resendable, expected):
    assert RetryPolicy().retry_status(status, resendable) is expected


def test_connect_errors_are_always_retried_read_errors_only_when_resendable():
    policy = RetryPolicy()
    request = httpx.Request("POST", "https://api.test/x")
    assert policy.retry_exception(httpx.ConnectError("refused", request=request), False)
    assert policy.retry_exception(httpx.ConnectTimeout("slow", request=request), False)
    assert not policy.retry_exception(httpx.ReadTimeout("slow", request=request), False)
    assert not policy.retry_exception(httpx.RemoteProtocolError("x", request=request), False)
    assert policy.retry_exception(httpx.ReadTimeout("slow", request=request), True)


def test_may_resend_by_method_and_idempotency_key():
    policy = RetryPolicy()
    assert policy.may_resend(httpx.Request("GET", "https://a.test/"), None)
    assert policy.may_resend(httpx.Request("PUT", "https://a.test/"), None)
    assert policy.may_resend(httpx.Request("DELETE", "https://a.test/"), None)
    assert not policy.may_resend(httpx.Request("POST", "https://a.test/"), None)
    assert not policy.may_resend(httpx.Request("PATCH", "https://a.test/"), "Idempotency-Key")
    keyed = httpx.Request("POST", "https://a.test/", headers={"Idempotency-Key": "k"})
    assert policy.may_resend(keyed, "Idempotency-Key")
    assert not policy.may_resend(keyed, None)


def test_retry_budget_runs_out_and_refills():
    budget = RetryBudget(capacity=20, retry_cost=5, timeout_cost=10)
    assert budget.spend(timeout=True)
    assert budget.spend(timeout=False)
    assert budget.spend(timeout=False)
    assert not budget.spend(timeout=False)
    for _ in range(5):
        budget.earn()
    assert budget.spend(timeout=False)


class Script:
    """A fake API that answers from a list of outcomes, then 200, recording every request."""

    def __init__(self, *outcomes: int | httpx.Response | type[httpx.TransportError]) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self.outcomes.pop(0) if self.outcomes else 200
        if isinstance(outcome, httpx.Response):
            return outcome
        if isinstance(outcome, type):
            raise outcome("injected", request=request)
        return httpx.Response(outcome, json={"ok": outcome < 400})


def make_client(
    script: Callable[[httpx.Request], httpx.Response],
    fake_time: FakeTime,
    policy: RetryPolicy = NO_JITTER,
    **kwargs,
) -> ApiClient:
    return ApiClient(
        "https://api.test/v1",
        transport=httpx.MockTransport(script),
        retry=policy,
        clock=fake_time.clock,
        wall=fake_time.wall,
        sleep=fake_time.sleep,
        **kwargs,
    )


async def test_transient_statuses_are_retried_with_exact_backoff(fake_time):
    script = Script(503, 502, 504)
    async with make_client(script, fake_time) as api:
        response = await api.get("/things")
    assert response.status_code == 200
    assert len(script.requests) == 4
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


async def test_exhausted_attempts_raise_the_last_error_with_the_count(fake_time):
    script = Script(500, 503, 502, 500, 200)
    async with make_client(script, fake_time) as api:
        with pytest.raises(ServerError) as caught:
            await api.get("/things")
    assert caught.value.attempts == 4
    assert caught.value.status_code == 500
    assert caught.value.retryable
    assert "(4 attempts)" in str(caught.value)
    assert len(script.requests) == 4


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, RequestRejectedError),
        (401, AuthError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, RequestRejectedError),
        (422, RequestRejectedError),
    ],
)
async def test_client_errors_are_never_retried(fake_time, status, error):
    script = Script(status)
    async with make_client(script, fake_time) as api:
        with pytest.raises(error) as caught:
            await api.get("/things")
    assert len(script.requests) == 1
    assert caught.value.attempts == 1
    assert not caught.value.retryable
    assert fake_time.sleeps == []


async def test_retry_after_seconds_is_honoured(fake_time):
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}))
    async with make_client(script, fake_time) as api:
        await api.get("/things")
    assert fake_time.sleeps == [7.0]


async def test_retry_after_http_date_is_honoured(fake_time):
    when = datetime.fromtimestamp(fake_time.wall() + 12, tz=UTC)
    script = Script(httpx.Response(503, headers={"Retry-After": format_datetime(when, True)}))
    async with make_client(script, fake_time) as api:
        await api.get("/things")
    assert fake_time.sleeps == [12.0]


async def test_retry_after_beyond_the_cap_raises_at_once_with_retry_after(fake_time):
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}))
    async with make_client(script, fake_time) as api:
        with pytest.raises(RateLimitedError) as caught:
            await api.get("/things")
    assert caught.value.retry_after == 3600.0
    assert caught.value.attempts == 1
    assert fake_time.sleeps == []


async def test_post_without_idempotency_key_is_not_retried_after_sending(fake_time):
    script = Script(503)
    async with make_client(script, fake_time) as api:
        with pytest.raises(ServerError):
            await api.post("/orders", json={"sku": "A"})
    assert len(script.requests) == 1
    assert "Idempotency-Key" not in script.requests[0].headers


async def test_post_without_key_is_not_retried_after_a_read_timeout(fake_time):
    script = Script(httpx.ReadTimeout)
    async with make_client(script, fake_time) as api:
        with pytest.raises(TransportError) as caught:
            await api.post("/orders", json={"sku": "A"})
    assert len(script.requests) == 1
    assert caught.value.attempts == 1


async def test_post_is_retried_when_it_failed_before_it_was_sent(fake_time):
    script = Script(httpx.ConnectError, httpx.ConnectTimeout)
    async with make_client(script, fake_time) as api:
        response = await api.post("/orders", json={"sku": "A"})
    assert response.status_code == 200
    assert len(script.requests) == 3


async def test_post_with_idempotency_key_is_retried_with_the_same_key(fake_time):
    script = Script(503, httpx.ReadTimeout, 500)
    async with make_client(script, fake_time, idempotency_header="Idempotency-Key") as api:
        response = await api.post("/orders", json={"sku": "A"})
        await api.post("/orders", json={"sku": "B"})
    assert response.status_code == 200
    keys = [r.headers["Idempotency-Key"] for r in script.requests]
    assert len(keys) == 5
    assert len(set(keys[:4])) == 1, "every attempt of one logical request shares its key"
    assert keys[4] != keys[0], "each logical request gets its own key"


async def test_caller_supplied_idempotency_key_is_used(fake_time):
    script = Script(503)
    async with make_client(script, fake_time, idempotency_header="X-Idem") as api:
        await api.patch("/orders/1", json={"qty": 2}, idempotency_key="order-1-v2")
    assert [r.headers["X-Idem"] for r in script.requests] == ["order-1-v2", "order-1-v2"]


async def test_429_is_retried_even_for_post_without_a_key(fake_time):
    script = Script(httpx.Response(429, headers={"Retry-After": "1"}))
    async with make_client(script, fake_time) as api:
        response = await api.post("/orders", json={})
    assert response.status_code == 200
    assert len(script.requests) == 2


async def test_transport_errors_exhausted_raise_transport_error_with_attempts(fake_time):
    script = Script(*([httpx.ConnectError] * 10))
    async with make_client(script, fake_time) as api:
        with pytest.raises(TransportError) as caught:
            await api.get("/things")
    assert caught.value.attempts == 4
    assert caught.value.retryable
    assert "ConnectError" in str(caught.value)
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


async def test_retry_budget_stops_retries_when_everything_fails(fake_time):
    script = Script(*([503] * 1000))
    async with make_client(script, fake_time) as api:
        api._retry.budget = RetryBudget(capacity=20, retry_cost=5)
        for _ in range(3):
            with pytest.raises(ServerError):
                await api.get("/things")
    # 4 retries fit in the budget, then each request gets a single attempt.
    assert len(script.requests) == 3 + 4


async def test_retries_are_logged_once_per_attempt(fake_time, caplog):
    caplog.set_level("DEBUG", logger="interlink.http")
    script = Script(503)
    async with make_client(script, fake_time) as api:
        await api.get("/things", params={"page": 2})
    lines = [r for r in caplog.records if r.name == "interlink.http"]
    assert len(lines) == 2
    first, second = lines
    assert first.attempt == 1 and first.http_status == 503 and first.retry_wait_s == 0.5
    assert second.attempt == 2 and second.http_status == 200 and second.retry_wait_s is None
    assert "GET https://api.test/v1/things?page=2 -> 503" in first.getMessage()
    assert first.duration_ms >= 0


async def test_stats_count_attempts_retries_and_statuses(fake_time):
    script = Script(503, 429)
    async with make_client(script, fake_time) as api:
        await api.get("/a")
        await api.get("/b")
        stats = api.stats
    assert stats.requests == 2
    assert stats.attempts == 4
    assert stats.retries == 2
    assert stats.statuses == {503: 1, 429: 1, 200: 2}


async def test_a_403_for_githubs_primary_rate_limit_waits_for_its_reset(fake_time):
    """GitHub answers its primary rate limit with 403, `X-RateLimit-Remaining: 0` and the
    reset as epoch seconds: paced as a 429, not a refusal of the request (RELIABILITY.md,
    outbound calls)."""
    reset = str(int(fake_time.wall()) + 5)
    headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset,
    }
    script = Script(httpx.Response(403, headers=headers, json={"message": "rate limit"}))
    async with make_client(script, fake_time) as api:
        response = await api.get("/repos")
    assert response.status_code == 200 and len(script.requests) == 2
    assert 4.0 <= sum(fake_time.sleeps) <= 6.0, fake_time.sleeps


async def test_a_403_with_retry_after_is_githubs_secondary_rate_limit(fake_time):
    script = Script(httpx.Response(403, headers={"Retry-After": "30"}))
    async with make_client(script, fake_time) as api:
        await api.get("/search")
    assert len(script.requests) == 2 and fake_time.sleeps[0] == 30.0


async def test_a_403_whose_reset_is_far_off_raises_rate_limited_with_the_wait(fake_time):
    """Past `max_retry_after` the error carries the wait, so a job comes back then."""
    reset = str(int(fake_time.wall()) + 3600)
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    script = Script(httpx.Response(403, headers=headers))
    async with make_client(script, fake_time) as api:
        with pytest.raises(RateLimitedError) as caught:
            await api.get("/repos")
    assert 3590 <= (caught.value.retry_after or 0) <= 3600
    assert caught.value.attempts == 1 and len(script.requests) == 1


async def test_a_403_with_quota_left_is_a_refusal(fake_time):
    headers = {"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "60"}
    script = Script(httpx.Response(403, headers=headers))
    async with make_client(script, fake_time) as api:
        with pytest.raises(ForbiddenError):
            await api.get("/repos")
    assert len(script.requests) == 1 and fake_time.sleeps == []


async def test_a_503_asking_for_longer_than_the_cap_carries_its_wait(fake_time):
    """Not slept (past `max_retry_after`): raised at once with the server's wait, which
    a job then waits instead of its own backoff (jobs/test_retries.py)."""
    script = Script(httpx.Response(503, headers={"Retry-After": "600"}))
    async with make_client(script, fake_time) as api:
        with pytest.raises(ServerError) as caught:
            await api.get("/things")
    assert caught.value.retry_after == 600.0 and caught.value.attempts == 1
    assert fake_time.sleeps == [] and len(script.requests) == 1
