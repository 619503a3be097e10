"""Per-key, per-route rate limits (`server.rate_limits`), shared through the database.

Each API key has one GCRA bucket per configured route (`"POST /jobs"`) and one for
everything else (`default`); requests without a valid key spend from one bucket per client
address (`anonymous`, default: `default`'s rate). Every server process sharing the
database spends from the same rows (`interlink.store.take_rate_limit`). Every answer of a
guarded route, errors included, carries both header families:

```
RateLimit-Policy: 10;w=60                 IETF draft (httpapi-ratelimit-headers, inline form)
RateLimit: limit=10, remaining=3, reset=42
X-RateLimit-Limit: 10                     the de-facto family (GitHub, flask-limiter)
X-RateLimit-Remaining: 3
X-RateLimit-Reset: 1764000042             epoch seconds when the quota is full again
Retry-After: 6                            (429 only)
```

`Limiter` reserves requests from a bucket a few at a time (`batch_size`: 1 for limits under
40 per period, up to 64 for large ones) and hands them out in the process without a
database write. What stays true across processes: no more requests are ever allowed than
the limit (each one allowed was reserved in the shared row first); a process holds at most
`batch_size - 1` reserved requests it has not used, for `LEASE_SECONDS` while requests keep
coming (then it gives them back with its next reservation), else until the bucket refills;
a limit under 40 per period is exact, as with one write per request. A refusal is
remembered until the bucket can allow again (at most `LEASE_SECONDS`), so a flood over
the limit costs no database work.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from interlink.config import RouteLimit
from interlink.store import RateDecision, prune_rate_limits, take_rate_limit
from interlink.types import WallClock

from ._envelope import API_PREFIX, error_response

__all__ = [
    "LEASE_SECONDS",
    "Limiter",
    "RouteLimits",
    "batch_size",
    "rate_limit_headers",
    "too_many_requests",
]

_PRUNE_EVERY = 300.0
LEASE_SECONDS = 1.0
"""How long a process hands out requests it reserved before it asks the database again."""
_MAX_BATCH = 64
_HELD_MAX = 10_000


class RouteLimits:
    """Which configured limit a request falls under: `"METHOD /path"` keys, then `default`.

    Paths are relative to `/api/v1` and may name parameters: `"POST /jobs/{id}/cancel"`.
    """

    def __init__(self, limits: Mapping[str, RouteLimit]) -> None:
        self.default = limits["default"]
        self.anonymous = limits.get("anonymous", self.default)
        """Per client address, for requests without a valid API key."""
        self._routes: list[tuple[str, re.Pattern[str], str, RouteLimit]] = []
        for key, limit in limits.items():
            if key in ("default", "anonymous"):
                continue
            method, _, path = key.partition(" ")
            pattern = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(path.rstrip("/")))
            self._routes.append((method, re.compile(f"^{pattern}/?$"), key, limit))

    def route(self, method: str, path: str) -> tuple[str, RouteLimit]:
        """`(route key, limit)` for a request: `("POST /jobs", 10/60s)`, `("default", ...)`."""
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        for route_method, pattern, key, limit in self._routes:
            if route_method == method and pattern.match(path):
                return key, limit
        return "default", self.default


def rate_limit_headers(decision: RateDecision, *, now: float | None = None) -> dict[str, str]:
    """Both header families for `decision`; `now` (epoch seconds) dates X-RateLimit-Reset."""
    now = time.time() if now is None else now
    reset = math.ceil(decision.reset_after)
    headers = {
        "RateLimit-Policy": f"{decision.limit};w={decision.period:g}",
        "RateLimit": f"limit={decision.limit}, remaining={decision.remaining}, reset={reset}",
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(math.ceil(now + decision.reset_after)),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
    return headers


async def too_many_requests(
    scope: Scope, receive: Receive, send: Send, decision: RateDecision, what: str
) -> None:
    wait = max(1, math.ceil(decision.retry_after))
    response = error_response(
        scope,
        429,
        f"Rate limit of {decision.limit} requests per {decision.period:g} s reached for "
        f"{what}; retry in {wait} s.",
        headers=rate_limit_headers(decision),
    )
    await response(scope, receive, send)


def batch_size(limit: RouteLimit) -> int:
    """Requests a process reserves at once: 1 (exact) under 40 per period, else a twentieth
    of the limit, at most 64."""
    return max(1, min(_MAX_BATCH, limit.limit // 20))


@dataclass
class _Held:
    """What this process knows of one bucket: requests it reserved and has not handed out
    yet, or (when `base` was a refusal) that the bucket is empty."""

    left: int
    until: float
    """Monotonic time after which `left` go back with the next reservation (for a refusal:
    after which the database is asked again)."""
    base: RateDecision
    """The database's decision, counting every request of the batch as spent."""
    at: float
    """Wall time of `base`."""


class Limiter:
    """Spend requests from the shared buckets, reserving `batch_size` at a time.

    ```python
    limiter = Limiter(store.engine)
    decision = await limiter.take("key:7 default", RouteLimit(limit=100, period=60))
    ```

    One coroutine per bucket reserves (in a thread: it writes); the others wait for it and
    then spend locally, so a burst on one key costs one write per batch. A refusal is
    remembered until the bucket can allow again (at most `lease` seconds): a client
    hammering an empty bucket costs no database work either. No request is allowed from
    memory that the database did not grant; only unused reservations another process
    gives back within that time are seen late.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        lease: float = LEASE_SECONDS,
        wall: WallClock = time.time,
        clock: WallClock = time.monotonic,
    ) -> None:
        self.engine = engine
        self.lease = lease
        self.wall = wall
        self.clock = clock
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._pruned = clock()

    def _spend(self, bucket: str) -> RateDecision | None:
        """One request handed out of this process's reservation, a remembered refusal, or
        None when the database must be asked."""
        held = self._held.get(bucket)
        if held is None or self.clock() >= held.until:
            return None
        if held.base.allowed and held.left < 1:
            return None
        if held.base.allowed:
            held.left -= 1
        return self._told(held)

    def _told(self, held: _Held) -> RateDecision:
        """What the headers say after handing out all but `held.left` of the batch: the
        reserved requests not handed out count as remaining, not as spent."""
        base = held.base
        elapsed = max(0.0, self.wall() - held.at)
        if base.allowed:
            remaining = base.remaining + held.left
            reset_after = base.reset_after - held.left * base.period / base.limit
        else:
            remaining, reset_after = 0, base.reset_after
        return RateDecision(
            allowed=base.allowed,
            limit=base.limit,
            period=base.period,
            remaining=remaining,
            reset_after=max(0.0, reset_after - elapsed),
            retry_after=0.0 if remaining else max(0.0, base.retry_after - elapsed),
        )

    async def take(self, bucket: str, limit: RouteLimit) -> RateDecision:
        """Spend one request of `bucket`; the decision says whether it was allowed."""
        spent = self._spend(bucket)
        if spent is not None:
            return spent
        lock = self._locks.get(bucket)
        if lock is None:
            lock = self._locks[bucket] = asyncio.Lock()
        async with lock:
            spent = self._spend(bucket)
            if spent is not None:
                return spent
            held = self._held.pop(bucket, None)
            refund = held.left if held is not None and held.base.allowed else 0
            want = batch_size(limit)
            decision, count = await run_in_threadpool(self._reserve, bucket, limit, want, refund)
            now = self.clock()
            if decision.allowed:
                mine = _Held(left=count - 1, until=now + self.lease, base=decision, at=self.wall())
            else:
                wait = min(decision.retry_after, self.lease)
                mine = _Held(left=0, until=now + wait, base=decision, at=self.wall())
            self._held[bucket] = mine
            decision = self._told(mine)
        await self._maybe_prune()
        return decision

    def _reserve(
        self, bucket: str, limit: RouteLimit, want: int, refund: int
    ) -> tuple[RateDecision, int]:
        # All `want` or, near the limit, exactly one: never more than the bucket holds.
        now = self.wall()
        decision = take_rate_limit(
            self.engine, bucket, limit.limit, limit.period, now=now, count=want, refund=refund
        )
        if decision.allowed or want == 1:
            return decision, want
        decision = take_rate_limit(
            self.engine, bucket, limit.limit, limit.period, now=now, count=1, refund=refund
        )
        return decision, 1

    async def _maybe_prune(self) -> None:
        now = self.clock()
        if len(self._held) > _HELD_MAX:
            # Stale reservations go back to the database by refilling, not by a write.
            for bucket in [b for b, h in self._held.items() if now >= h.until]:
                del self._held[bucket]
            for bucket in [b for b, lk in self._locks.items() if not lk.locked()]:
                if bucket not in self._held:
                    del self._locks[bucket]
        if now - self._pruned >= _PRUNE_EVERY:
            self._pruned = now
            await run_in_threadpool(prune_rate_limits, self.engine)
