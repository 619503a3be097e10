"""Rate limiting: a client-side token bucket plus waiting when the server says to.

`TokenBucket` and `ServerLimits` are pure decisions on an injected clock; `RateLimiter` is
the async gate every request of a connection passes, and `RateLimitTransport` puts it in
front of a transport. One `RateLimiter` per connection is shared by every task in the
process (`RateLimiter.shared`).

When the server closes its window (a 429 or 503 with `Retry-After`, or a rate-limit header
family saying nothing is left until a reset), the gate stays shut for the whole connection
until the latest moment any answer named. The gate is checked right before a request is
handed to the transport, and `RateLimitTransport` keeps no more requests in the transport
than its connection pool holds, so no request passes the gate and then waits in the pool,
out of the gate's reach, while a window closes.

A connection's `rate_limit.warn_below` makes its `RateLimiter` log one WARNING when the
requests left that the server reports fall below it (`QuotaWarning`), once per window.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from typing import ClassVar

import httpx

from interlink.errors import RateLimitedError
from interlink.types import Clock, Sleep, WallClock

from ._headers import RateLimitInfo, parse_rate_limit, parse_retry_after
from ._retry import ATTEMPTS, MAX_WAIT, RATE_WAIT

__all__ = [
    "QuotaWarning",
    "RateLimitTransport",
    "RateLimiter",
    "ServerLimits",
    "TokenBucket",
    "pool_size",
]

logger = logging.getLogger("interlink.http")

# A 429 that names no wait at all: assume nothing is left for this long.
_BARE_REFUSAL_WAIT = 1.0


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
    at zero the next request waits for the reset instead of being refused.

    The server closes the window for everyone with a 429 or 503 carrying `Retry-After`, or
    with any response saying nothing is left until a reset: no request goes before the
    latest moment any of them named. A 429 that names no moment closes it for a second.

    After a reset nothing is known, so one request goes out as a probe and the rest wait for
    its answer. An answer that carries no rate-limit headers ends that: the server is not
    counting out loud, so requests go at full concurrency again until it says otherwise.
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
    ) -> RateLimitInfo | None:
        """Learn from one response to request `seq`; `now` monotonic, `wall` epoch seconds.

        Returns what its rate-limit headers said, None when they said nothing."""
        until = self._blocked_until
        if status in (429, 503) or (status == 403 and "retry-after" in headers):
            retry_after = parse_retry_after(headers.get("retry-after"), wall)
            if retry_after is not None:
                until = max(until, now + retry_after)
        info = parse_rate_limit(headers, wall)
        if info is None:
            self._probing = False
            if status != 429 and now >= self._reset_at:
                # Past the last reset and the server says nothing of the new quota: the
                # old count means nothing any more, so stop probing one at a time.
                self._remaining = None
        else:
            if seq >= self._seq:
                self._seq = seq
                self._remaining = info.remaining
                self._reset_at = now + info.reset_after
                self._probing = False
            if info.remaining <= 0 and info.reset_after > 0:
                # Nothing left until the reset, whichever request this answers: holding
                # back costs a wait, going on costs refusals (and, on some APIs, a ban).
                until = max(until, now + info.reset_after)
        if status == 429 and until <= now:
            # Refused without a usable hint: assume nothing is left for a moment.
            until = now + _BARE_REFUSAL_WAIT
        self._blocked_until = until
        return info

    def on_failure(self) -> None:
        """A request got no response: let another probe go."""
        self._probing = False


class QuotaWarning:
    """Says when to warn that the quota a server reports fell below `threshold`: once per
    window, not once per request.

    The first answer below the threshold warns. Later ones stay quiet until the window
    the warning named has reset (by the wall clock), or an answer reports the threshold or
    more left again (a new window). Answers to requests sent before the latest one seen
    are ignored: with requests in flight they arrive out of order.
    """

    def __init__(self, threshold: int) -> None:
        if threshold < 1:
            raise ValueError("warn_below must be at least 1")
        self.threshold = threshold
        self._seq = -1
        self._armed = True
        self._quiet_until: float | None = None

    def observe(self, seq: int, info: RateLimitInfo, wall: float) -> bool:
        """Whether the answer to request `seq` (`wall` epoch seconds) calls for a warning."""
        if seq < self._seq:
            return False
        self._seq = seq
        if info.remaining >= self.threshold:
            self._armed = True
            return False
        if not self._armed and self._quiet_until is not None and wall >= self._quiet_until:
            self._armed = True  # a new window, and low again
        if not self._armed:
            return False
        self._armed = False
        self._quiet_until = wall + info.reset_after if info.reset_after > 0 else None
        return True


def _quota_message(name: str, threshold: int, info: RateLimitInfo, wall: float) -> str:
    left = f"{info.remaining} of {info.limit}" if info.limit is not None else str(info.remaining)
    if info.reset_after > 0:
        reset_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall + info.reset_after))
        resets = f"the window resets at {reset_at} (in {info.reset_after:.0f} s)"
    else:
        resets = "the API did not say when its window resets"
    who = f"connection {name!r}" if name else "the API"
    return (
        f"{who}: rate limit running low: {left} requests left, below warn_below "
        f"({threshold}); {resets}"
    )


class RateLimiter:
    """The gate every request of one connection passes before it is sent.

    Combines the configured token bucket (if any) with what the server announces. Use
    `RateLimiter.shared(name, ...)` so that every client of a connection in this process
    draws from the same bucket and waits behind the same closed window.
    """

    _registry: ClassVar[weakref.WeakValueDictionary[str, RateLimiter]] = (
        weakref.WeakValueDictionary()
    )

    def __init__(
        self,
        bucket: TokenBucket | None = None,
        *,
        name: str = "",
        clock: Clock = time.monotonic,
        wall: WallClock = time.time,
        sleep: Sleep = asyncio.sleep,
        warn_below: int | None = None,
    ) -> None:
        self.bucket = bucket
        self.name = name
        self.server = ServerLimits(probe=bucket is None)
        self.quota_warning = QuotaWarning(warn_below) if warn_below is not None else None
        """Warns once per window when the server's remaining quota runs low (`warn_below`)."""
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
        warn_below: int | None = None,
    ) -> RateLimiter:
        """The process-wide limiter of connection `name`, created on first use.

        `warn_below` (the connection's `rate_limit.warn_below`) is applied to a limiter
        that already exists too."""
        limiter = cls._registry.get(name)
        if limiter is None:
            bucket = None
            if rate is not None:
                per_second = rate / per
                bucket = TokenBucket(per_second, burst or max(1, int(rate)), time.monotonic())
            limiter = cls(bucket, name=name, warn_below=warn_below)
            cls._registry[name] = limiter
        elif warn_below is not None and (
            limiter.quota_warning is None or limiter.quota_warning.threshold != warn_below
        ):
            limiter.quota_warning = QuotaWarning(warn_below)
        return limiter

    async def acquire(self, max_wait: float | None = None) -> tuple[int, float]:
        """Wait until a request may go; returns its sequence number and the seconds waited.

        The server's window is checked last, with no pause between that check and the
        return, so a window closed while this request waited (for a token, for a probe's
        answer) holds it too. A window that would hold it more than `max_wait` seconds
        raises `RateLimitedError` with `retry_after` instead of sleeping: a job is better
        rescheduled than left asleep in a worker.
        """
        waited = 0.0
        has_token = self.bucket is None
        try:
            while True:
                wait = self.server.next_wait(self._clock())
                if wait is None:
                    waited += await self._wait_for_news()
                    continue
                if wait > 0:
                    if max_wait is not None and wait > max_wait:
                        raise self._too_long(wait, max_wait)
                    waited += wait
                    await self._sleep(wait)
                    continue
                if has_token:
                    break
                token_wait = await self._take_token()
                has_token = True
                if token_wait == 0:
                    break  # nothing was awaited since the window was checked
                waited += token_wait
        finally:
            self.waited += waited
        return self.server.on_send(), waited

    def _too_long(self, wait: float, max_wait: float) -> RateLimitedError:
        on = f" on connection {self.name!r}" if self.name else ""
        return RateLimitedError(
            f"the server closed its rate-limit window{on} for {wait:.1f} s more, longer "
            f"than the {max_wait:g} s interlink waits in-process (max_retry_after); "
            "retry after retry_after seconds",
            retry_after=wait,
        )

    def now(self) -> float:
        """The limiter's clock (monotonic seconds)."""
        return self._clock()

    async def _wait_for_news(self) -> float:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Events bind to the loop that first waits on them; a client may outlive one
            # loop (tests, asyncio.run twice) and be used on the next.
            self._loop, self._news = loop, asyncio.Event()
        self._news.clear()
        started = self._clock()
        await self._news.wait()
        return self._clock() - started

    async def _take_token(self) -> float:
        assert self.bucket is not None
        wait = self.bucket.take(self._clock())
        if wait <= 0:
            return 0.0
        waited = 0.0
        # Waiters line up behind one lock (asyncio locks are first come, first served);
        # each leaves only when a token is really there.
        async with self._queue:
            while wait > 0:
                waited += wait
                await self._sleep(wait)
                wait = self.bucket.take(self._clock())
        return waited

    def observe(self, seq: int, response: httpx.Response) -> None:
        wall = self._wall()
        info = self.server.observe(seq, response.headers, response.status_code, self._clock(), wall)
        self._news.set()
        warning = self.quota_warning
        if info is not None and warning is not None and warning.observe(seq, info, wall):
            logger.warning(_quota_message(self.name, warning.threshold, info, wall))

    def failed(self) -> None:
        self.server.on_failure()
        self._news.set()


class _Slots:
    """At most `size` holders at once; the others wait in arrival order."""

    __slots__ = ("_waiters", "size", "used")

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits for it; no await on the fast path."""
        if self.used < self.size and not self._waiters:
            self.used += 1
            return True
        return False

    async def take(self) -> None:
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as it was cancelled: pass it on
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the next in line
                return
        self.used -= 1


def pool_size(transport: httpx.AsyncBaseTransport) -> int | None:
    """How many requests `transport` sends at once, or None when it does not say.

    A transport of your own that queues requests for a pool says so with an int
    `max_connections` attribute.
    """
    size: object = getattr(transport, "max_connections", None)
    if isinstance(transport, httpx.AsyncHTTPTransport):
        size = getattr(transport._pool, "_max_connections", None)
    if isinstance(size, int) and not isinstance(size, bool) and 0 < size < 1_000_000:
        return size
    return None


class RateLimitTransport(httpx.AsyncBaseTransport):
    """Passes each request through a `RateLimiter` and teaches it from each response.

    It keeps at most `max_in_flight` requests in the inner transport (by default the size
    of the inner transport's connection pool, see `pool_size`): the others wait here,
    where a window the server closes holds them, instead of in the pool, from where they
    would be sent as soon as a connection frees up. A request that waited for a slot
    passes the gate after it got one, right before it is handed on.

    With httpx's own transport the body of a response is read after the slot is given
    back, so a request can wait that long in its pool after passing the gate; aiohttp's
    transport returns responses fully read.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        limiter: RateLimiter,
        *,
        max_in_flight: int | None = None,
    ) -> None:
        self._inner = inner
        self.limiter = limiter
        size = max_in_flight if max_in_flight is not None else pool_size(inner)
        self._slots = _Slots(size) if size is not None else None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        slots = self._slots
        arrived = self.limiter.now()
        if slots is not None and not slots.try_take():
            await slots.take()
        try:
            try:
                seq, _ = await self.limiter.acquire(request.extensions.get(MAX_WAIT))
            except RateLimitedError as closed:
                url = request.url
                closed.method = request.method
                # Without the query: its parameters may carry credentials.
                closed.url = f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"
                closed.attempts = int(request.extensions.get(ATTEMPTS, 1))
                raise
            # Queued for a slot behind other requests, then held at the gate: all of it is
            # this request's wait for the connection's limits (the log shows it apart).
            request.extensions[RATE_WAIT] = self.limiter.now() - arrived
            try:
                response = await self._inner.handle_async_request(request)
            except BaseException:
                self.limiter.failed()
                raise
            # Learn before the slot is handed on: the next request checks the gate at once.
            self.limiter.observe(seq, response)
            return response
        finally:
            if slots is not None:
                slots.give()

    async def aclose(self) -> None:
        await self._inner.aclose()
