from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from interlink.errors import RateLimitedError
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
    limits.observe(old, _headers(x_ratelimit_remaining="3", x_ratelimit_reset="60"), 200, 0, 0)
    assert limits.next_wait(1.0) == 0.0


def test_server_limits_close_the_window_on_nothing_left_from_any_report() -> None:
    # Concurrent answers are counted by the server in any order: one saying nothing is left
    # until the reset closes the window, even when a later request's answer came first.
    limits = ServerLimits()
    old, new = limits.on_send(), limits.on_send()
    limits.observe(new, _headers(x_ratelimit_remaining="5", x_ratelimit_reset="60"), 200, 0, 0)
    limits.observe(old, _headers(x_ratelimit_remaining="0", x_ratelimit_reset="30"), 200, 0, 0)
    assert limits.next_wait(1.0) == pytest.approx(29.0)
    assert limits.next_wait(30.0) == 0.0


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


# -- a window the server closes holds the whole connection ----------------------------------


class VirtualTime:
    """A clock that moves only when every task waits: sleeps end in deadline order.

    `run` drives the tasks: it lets them all run until they block, then jumps the clock to
    the earliest sleep's deadline and wakes that sleeper, until every task is done.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_800_000_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def settle(self) -> None:
        for _ in range(100):
            await asyncio.sleep(0)

    async def run(self, *coroutines: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        while True:
            await self.settle()
            if all(task.done() for task in tasks):
                return [task.result() for task in tasks]
            while self._timers and self._timers[0][2].done():
                heapq.heappop(self._timers)
            assert self._timers, "deadlock: tasks wait and nobody sleeps"
            when, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            future.set_result(None)


Handler = Callable[[int, httpx.Request], httpx.Response]


class PooledTransport(httpx.AsyncBaseTransport):
    """`max_connections` connections, each request holding one for `latency` seconds.

    Requests beyond the pool wait for a connection, as in aiohttp's and httpx's pools; the
    time each request is written (gets its connection) is recorded in `sent`.
    """

    def __init__(
        self, handler: Handler, time: VirtualTime, *, max_connections: int, latency: float
    ) -> None:
        self.handler = handler
        self.time = time
        self.max_connections = max_connections
        self.latency = latency
        self.sent: list[float] = []
        self._connections = asyncio.Semaphore(max_connections)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._connections:
            self.sent.append(self.time.now)
            response = self.handler(len(self.sent) - 1, request)
            await self.time.sleep(self.latency)
            return response


async def test_a_429_holds_requests_already_waiting_for_a_token() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(
        TokenBucket(rate=4.0, burst=1, now=0.0), clock=vt.clock, wall=vt.wall, sleep=vt.sleep
    )
    first, _ = await limiter.acquire()
    passed: list[float] = []

    async def other() -> None:
        await limiter.acquire()
        passed.append(vt.now)

    others = [asyncio.ensure_future(other()) for _ in range(5)]
    await vt.settle()  # they wait for tokens now
    limiter.observe(first, httpx.Response(429, headers={"Retry-After": "2"}))  # at t=0
    await vt.run(*others)
    assert len(passed) == 5
    assert min(passed) >= 2.0, f"sent inside the window: {passed}"


async def test_a_429_holds_requests_that_passed_the_gate_but_wait_for_a_connection() -> None:
    vt = VirtualTime()

    def handler(number: int, request: httpx.Request) -> httpx.Response:
        if number == 0:
            return httpx.Response(429, headers={"Retry-After": "2"})
        return httpx.Response(200, json={"n": number})

    pool = PooledTransport(handler, vt, max_connections=2, latency=0.5)
    async with ApiClient(
        "https://api.test",
        transport=pool,
        retry=RetryPolicy(jitter=lambda c: c),
        clock=vt.clock,
        wall=vt.wall,
        sleep=vt.sleep,
    ) as api:
        responses = await vt.run(*(api.get(f"/items/{n}") for n in range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    # Two went at t=0; the 429 reached the client at t=0.5 and closed the window until 2.5.
    assert pool.sent[:2] == [0.0, 0.0]
    assert all(t >= 2.5 for t in pool.sent[2:]), f"sent inside the window: {pool.sent}"
    # The refused request was retried once, at the deadline, not after a second wait.
    assert len(pool.sent) == 7
    assert pool.sent[2] == pytest.approx(2.5)


async def test_the_retry_waits_once_for_a_reset_without_retry_after() -> None:
    vt = VirtualTime()

    def handler(number: int, request: httpx.Request) -> httpx.Response:
        if number == 0:
            headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"}
            return httpx.Response(429, headers=headers)
        return httpx.Response(200)

    pool = PooledTransport(handler, vt, max_connections=4, latency=0.0)
    async with ApiClient(
        "https://api.test",
        transport=pool,
        retry=RetryPolicy(jitter=lambda c: c),
        clock=vt.clock,
        wall=vt.wall,
        sleep=vt.sleep,
    ) as api:
        response = await vt.run(api.get("/items"))
    assert response[0].status_code == 200
    # The retry's backoff (0.5 s) runs inside the 3 s window, not before it.
    assert pool.sent == [0.0, 3.0]


def test_server_limits_recover_full_concurrency_after_a_headerless_answer() -> None:
    limits = ServerLimits()
    exhausted = _headers(x_ratelimit_remaining="0", x_ratelimit_reset="1")
    limits.observe(limits.on_send(), exhausted, 200, 0.0, 0)
    assert limits.next_wait(0.5) == pytest.approx(0.5)
    assert limits.next_wait(1.0) == 0.0  # the probe
    probe = limits.on_send()
    assert limits.next_wait(1.0) is None  # the others wait for its answer
    limits.observe(probe, _headers(), 200, 1.2, 0)
    for _ in range(20):  # no headers: the server is not counting, go at full concurrency
        assert limits.next_wait(1.2) == 0.0
        limits.on_send()


def test_server_limits_a_429_naming_nothing_left_and_no_reset_still_closes_for_a_moment() -> None:
    limits = ServerLimits(probe=False)
    limits.observe(limits.on_send(), _headers(x_ratelimit_remaining="0"), 429, 0.0, 0)
    assert limits.next_wait(0.0) == pytest.approx(1.0)


async def test_a_window_longer_than_max_retry_after_is_not_slept_by_other_requests(
    fake_time: FakeTime,
) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "3600"})
        return httpx.Response(200)

    limiter = RateLimiter(clock=fake_time.clock, wall=fake_time.wall, sleep=fake_time.sleep)
    limiter.name = "shop"  # as RateLimiter.shared("shop") names it
    async with ApiClient(
        "https://api.test",
        name="shop",
        params={"api_key": "s3cret-value"},
        transport=httpx.MockTransport(handler),
        rate_limiter=limiter,
        retry=RetryPolicy(max_retry_after=60.0),
        clock=fake_time.clock,
        wall=fake_time.wall,
        sleep=fake_time.sleep,
    ) as api:
        with pytest.raises(RateLimitedError) as refused:
            await api.get("/orders")
        assert refused.value.retry_after == 3600.0
        fake_time.advance(10.0)
        # Another request of the connection: the window is closed for 3590 s more, far
        # beyond the 60 s interlink sleeps in-process, so it fails at once the same way.
        with pytest.raises(RateLimitedError) as held:
            await api.get("/customers")
    assert calls == ["/orders"]
    assert fake_time.sleeps == []
    assert held.value.retry_after == pytest.approx(3590.0)
    assert held.value.status_code is None
    message = str(held.value)
    assert "connection 'shop'" in message and "3590.0 s" in message and "60 s" in message
    assert "/customers" in message and "s3cret-value" not in message


def test_the_pool_size_of_each_transport_is_found() -> None:
    from interlink.http import create_transport
    from interlink.http._ratelimit import pool_size

    assert pool_size(create_transport("aiohttp", max_connections=7)) == 7
    assert pool_size(create_transport("httpx", max_connections=9)) == 9
    assert pool_size(httpx.MockTransport(lambda request: httpx.Response(200))) is None
