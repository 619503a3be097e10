"""Rate limiting: a client-side token bucket plus waiting when the server says to.

`TokenBucket` and `ServerLimits` are pure decisions on an injected clock; `RateLimiter` is
the async gate every request of a connection passes, and `RateLimitTransport` puts it in
front of a transport. One `RateLimiter` per connection is shared by every task in the
process (`RateLimiter.shared`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import ClassVar

import httpx

from interlink.types import Clock, Sleep, WallClock

from ._headers import parse_rate_limit, parse_retry_after
from ._retry import RATE_WAIT

__all__ = ["RateLimitTransport", "RateLimiter", "ServerLimits", "TokenBucket"]


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; each request takes one.

    `take` takes a token and returns 0, or takes nothing and returns how long until one
    is there. Nothing is reserved ahead: after the event loop was busy for a while, no more
    than `burst` requests can go at once, as the server's own bucket expects.
    """

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> float:
        elapsed = max(0.0, now - self._last)
        self._last = max(self._last, now)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        # The epsilon absorbs float rounding: sleeping exactly the returned wait must
        # always find the token there (else a caller could loop on ever-tinier waits).
        if self._tokens >= 1.0 - 1e-9:
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate


class ServerLimits:
    """What the server has said about its limit, turned into "wait this long" answers.

    Each request gets a sequence number when it is sent. A response reporting `remaining`
    left after request k means at most `remaining - (requests sent after k)` are left now;
    at zero the next request waits for the reset instead of being refused. After a reset
    nothing is known, so one request goes out as a probe and the rest wait for its answer.
    A 429 or 503 with `Retry-After` blocks everyone until then.
    """

    def __init__(self, *, probe: bool = True) -> None:
        self.probe = probe
        self.sent = 0
        self._seq = -1
        self._remaining: int | None = None
        self._reset_at = 0.0
        self._blocked_until = 0.0
        self._probing = False

    def next_wait(self, now: float) -> float | None:
        """Seconds to wait before sending, 0 to send now, None to wait for a response."""
        if now < self._blocked_until:
            return self._blocked_until - now
        if self._remaining is None:
            return 0.0
        if self._remaining - (self.sent - self._seq - 1) > 0:
            return 0.0
        if now < self._reset_at:
            return self._reset_at - now
        # Used up and the window has passed: probe with one request, hold the rest until
        # it answers with the new quota. With a client-side bucket pacing the requests the
        # quota is known well enough: go on without the round trip.
        if not self.probe:
            self._remaining = None
            return 0.0
        if self._probing:
            return None
        self._probing = True
        return 0.0

    def on_send(self) -> int:
        seq = self.sent
        self.sent += 1
        return seq

    def observe(
        self, seq: int, headers: httpx.Headers, status: int, now: float, wall: float
    ) -> None:
        """Learn from one response to request `seq`; `now` monotonic, `wall` epoch seconds."""
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"), wall)
            if retry_after is not None:
                self._blocked_until = max(self._blocked_until, now + retry_after)
        info = parse_rate_limit(headers, wall)
        if info is None:
            if status == 429 and self._blocked_until <= now:
                # Refused without a hint: assume nothing is left for a moment.
                self._blocked_until = now + 1.0
            self._probing = False
            return
        if seq >= self._seq:
            self._seq = seq
            self._remaining = info.remaining
            self._reset_at = now + info.reset_after
            self._probing = False
        if status == 429 and info.remaining <= 0 and info.reset_after > 0:
            self._blocked_until = max(self._blocked_until, now + info.reset_after)

    def on_failure(self) -> None:
        """A request got no response: let another probe go."""
        self._probing = False


class RateLimiter:
    """The gate every request of one connection passes before it is sent.

    Combines the configured token bucket (if any) with what the server announces. Use
    `RateLimiter.shared(name, ...)` so that every client of a connection in this process
    draws from the same bucket.
    """

    _registry: ClassVar[weakref.WeakValueDictionary[str, RateLimiter]] = (
        weakref.WeakValueDictionary()
    )

    def __init__(
        self,
        bucket: TokenBucket | None = None,
        *,
        clock: Clock = time.monotonic,
        wall: WallClock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bucket = bucket
        self.server = ServerLimits(probe=bucket is None)
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._news = asyncio.Event()
        self._queue = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.waited = 0.0
        """Total seconds requests spent waiting here, for stats."""

    @classmethod
    def shared(
        cls,
        name: str,
        *,
        rate: float | None = None,
        per: float = 1.0,
        burst: int | None = None,
    ) -> RateLimiter:
        """The process-wide limiter of connection `name`, created on first use."""
        limiter = cls._registry.get(name)
        if limiter is None:
            bucket = None
            if rate is not None:
                per_second = rate / per
                bucket = TokenBucket(per_second, burst or max(1, int(rate)), time.monotonic())
            limiter = cls(bucket)
            cls._registry[name] = limiter
        return limiter

    async def acquire(self) -> tuple[int, float]:
        """Wait until a request may go; returns its sequence number and the seconds waited."""
        waited = 0.0
        while True:
            wait = self.server.next_wait(self._clock())
            if wait is None:
                loop = asyncio.get_running_loop()
                if self._loop is not loop:
                    # Events bind to the loop that first waits on them; a client may outlive
                    # one loop (tests, asyncio.run twice) and be used on the next.
                    self._loop, self._news = loop, asyncio.Event()
                self._news.clear()
                started = self._clock()
                await self._news.wait()
                waited += self._clock() - started
                continue
            if wait <= 0:
                break
            waited += wait
            await self._sleep(wait)
        if self.bucket is not None:
            wait = self.bucket.take(self._clock())
            if wait > 0:
                # Waiters line up behind one lock (asyncio locks are first come, first
                # served); each leaves only when a token is really there.
                async with self._queue:
                    while wait > 0:
                        waited += wait
                        await self._sleep(wait)
                        wait = self.bucket.take(self._clock())
        self.waited += waited
        return self.server.on_send(), waited

    def observe(self, seq: int, response: httpx.Response) -> None:
        self.server.observe(
            seq, response.headers, response.status_code, self._clock(), self._wall()
        )
        self._news.set()

    def failed(self) -> None:
        self.server.on_failure()
        self._news.set()


class RateLimitTransport(httpx.AsyncBaseTransport):
    """Passes each request through a `RateLimiter` and teaches it from each response."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limiter: RateLimiter) -> None:
        self._inner = inner
        self.limiter = limiter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        seq, waited = await self.limiter.acquire()
        request.extensions[RATE_WAIT] = waited
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self.limiter.failed()
            raise
        self.limiter.observe(seq, response)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
