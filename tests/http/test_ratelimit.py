from __future__ import annotations

import asyncio

import httpx
import pytest

from interlink.http import ApiClient, RateLimiter, RetryPolicy, ServerLimits, TokenBucket

from .conftest import FakeTime


def test_token_bucket_allows_a_burst_then_paces_at_the_rate():
    bucket = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1), "empty: a token in 0.1 s"
    assert bucket.take(0.05) == pytest.approx(0.05), "nothing was reserved by asking"
    assert bucket.take(0.1) == 0.0
    assert bucket.take(0.1) == pytest.approx(0.1)


def test_token_bucket_never_releases_more_than_the_burst_after_a_stall():
    bucket = TokenBucket(rate=100.0, burst=2, now=0.0)
    bucket.take(0.0)
    bucket.take(0.0)
    # A second of nothing: the bucket refills to its burst, not to 100.
    released = sum(1 for _ in range(10) if bucket.take(1.0) == 0.0)
    assert released == 2


def test_token_bucket_refills_over_time_up_to_the_burst():
    bucket = TokenBucket(rate=2.0, burst=2, now=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == 0.0
    assert bucket.take(100.0) == 0.0  # refilled, but only to 2
    assert bucket.take(100.0) == 0.0
    assert bucket.take(100.0) == pytest.approx(0.5)


def test_token_bucket_rejects_nonsense():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0, now=0)


def _headers(**fields: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in fields.items()})


def test_server_limits_wait_for_reset_when_nothing_is_left():
    limits = ServerLimits()
    seq = limits.on_send()
    limits.observe(seq, _headers(x_ratelimit_remaining="0", x_ratelimit_reset="5"), 200, 10.0, 0)
    assert limits.next_wait(10.0) == pytest.approx(5.0)
    assert limits.next_wait(13.0) == pytest.approx(2.0)


def test_server_limits_count_requests_sent_since_the_report():
    limits = ServerLimits()
    first = limits.on_send()
    limits.on_send()  # sent after `first`, not yet answered
    limits.on_send()
    limits.observe(first, _headers(x_ratelimit_remaining="2", x_ratelimit_reset="60"), 200, 0, 0)
    # 2 left when `first` was answered, 2 sent since: nothing left now.
    assert limits.next_wait(1.0) == pytest.approx(59.0)


def test_server_limits_ignore_stale_reports():
    limits = ServerLimits()
    old, new = limits.on_send(), limits.on_send()
    limits.observe(new, _headers(x_ratelimit_remaining="50", x_ratelimit_reset="60"), 200, 0, 0)
    limits.observe(old, _headers(x_ratelimit_remaining="0", x_ratelimit_reset="60"), 200, 0, 0)
    assert limits.next_wait(1.0) == 0.0


def test_server_limits_probe_after_the_window_passes():
    limits = ServerLimits()
    seq = limits.on_send()
    limits.observe(seq, _headers(x_ratelimit_remaining="0", x_ratelimit_reset="1"), 200, 0, 0)
    assert limits.next_wait(2.0) == 0.0  # the probe
    limits.on_send()
    assert limits.next_wait(2.0) is None  # the rest wait for its answer
    limits.observe(1, _headers(x_ratelimit_remaining="9", x_ratelimit_reset="60"), 200, 2.1, 0)
    assert limits.next_wait(2.1) == 0.0


def test_server_limits_retry_after_blocks_everyone():
    limits = ServerLimits()
    seq = limits.on_send()
    limits.observe(seq, _headers(retry_after="4"), 429, 100.0, 0)
    assert limits.next_wait(100.0) == pytest.approx(4.0)
    assert limits.next_wait(104.0) == 0.0


def test_server_limits_bare_429_backs_off_briefly():
    limits = ServerLimits()
    limits.observe(limits.on_send(), _headers(), 429, 0.0, 0)
    assert limits.next_wait(0.0) == pytest.approx(1.0)


def test_server_limits_remaining_without_reset_does_not_serialise():
    limits = ServerLimits()
    limits.observe(limits.on_send(), _headers(x_ratelimit_remaining="4999"), 200, 0.0, 0)
    for _ in range(100):
        assert limits.next_wait(0.0) == 0.0
        limits.on_send()


async def test_rate_limiter_paces_requests_with_the_bucket(fake_time: FakeTime):
    limiter = RateLimiter(
        TokenBucket(rate=5.0, burst=2, now=fake_time.clock()),
        clock=fake_time.clock,
        wall=fake_time.wall,
        sleep=fake_time.sleep,
    )
    for _ in range(7):
        await limiter.acquire()
    # 2 from the burst, then one every 0.2 s.
    assert fake_time.now - 1000.0 == pytest.approx(1.0)
    assert limiter.waited == pytest.approx(1.0)


def test_shared_limiter_is_one_per_connection_name():
    a = RateLimiter.shared("conn-a-shared-test", rate=10, per=1)
    b = RateLimiter.shared("conn-a-shared-test", rate=10, per=1)
    c = RateLimiter.shared("conn-c-shared-test")
    assert a is b
    assert a is not c
    assert a.bucket is not None and a.bucket.rate == 10 and a.bucket.burst == 10
    assert c.bucket is None


def test_shared_limiter_converts_per_into_a_rate():
    limiter = RateLimiter.shared("per-minute-shared-test", rate=120, per=60, burst=5)
    assert limiter.bucket is not None
    assert limiter.bucket.rate == pytest.approx(2.0)
    assert limiter.bucket.burst == 5


class QuotaServer:
    """Answers with X-RateLimit headers from a fixed window of `limit` requests."""

    def __init__(self, fake_time: FakeTime, limit: int, window: float) -> None:
        self.time = fake_time
        self.limit = limit
        self.window = window
        self.window_start = fake_time.clock()
        self.used = 0
        self.refused = 0
        self.served = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.time.clock()
        if now - self.window_start >= self.window:
            self.window_start, self.used = now, 0
        reset = str(self.time.wall() + (self.window - (now - self.window_start)))
        if self.used >= self.limit:
            self.refused += 1
            return httpx.Response(
                429,
                headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
            )
        self.used += 1
        self.served += 1
        return httpx.Response(
            200,
            headers={
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(self.limit - self.used),
                "X-RateLimit-Reset": reset,
            },
            json={"ok": True},
        )


async def test_client_waits_for_the_reset_instead_of_being_refused(fake_time: FakeTime):
    server = QuotaServer(fake_time, limit=10, window=60.0)
    async with ApiClient(
        "https://api.test",
        transport=httpx.MockTransport(server),
        retry=RetryPolicy(jitter=lambda c: c),
        clock=fake_time.clock,
        wall=fake_time.wall,
        sleep=fake_time.sleep,
    ) as api:
        for _ in range(35):
            await api.get("/items")
    assert server.served == 35
    assert server.refused == 0
    # 35 requests in windows of 10: three resets waited for.
    assert fake_time.now - 1000.0 == pytest.approx(180.0)


async def test_concurrent_tasks_share_the_server_quota(fake_time: FakeTime):
    server = QuotaServer(fake_time, limit=10, window=60.0)
    async with ApiClient(
        "https://api.test",
        transport=httpx.MockTransport(server),
        retry=RetryPolicy(jitter=lambda c: c),
        clock=fake_time.clock,
        wall=fake_time.wall,
        sleep=fake_time.sleep,
    ) as api:

        async def worker() -> None:
            for _ in range(5):
                await api.get("/items")

        await asyncio.gather(*(worker() for _ in range(8)))
    assert server.served == 40
    # The first answers arrive only after every worker sent once, so the first window can
    # be overrun by the tasks that had already passed the gate; after that, none.
    assert server.refused <= 8
