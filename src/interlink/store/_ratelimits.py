"""Rate limits shared by every server process: one GCRA bucket per row of a table.

GCRA (the generic cell rate algorithm) keeps a single number per bucket, the theoretical
arrival time `tat` of the next request. With `limit` requests per `period` seconds each
request costs `T = period / limit`; a request at `now` is allowed when
`max(tat, now) + T - now <= period`, and then `tat` becomes `max(tat, now) + T`. That is
a token bucket of `limit` tokens refilled at `limit / period` per second, stored as one
float.

`take()` decides and records in one statement (`INSERT ... ON CONFLICT DO UPDATE ...
WHERE ... RETURNING tat`), so two processes sharing a database can never both spend the
last request: the database serialises the row. Only a refused request reads the row
again, for its `Retry-After`.

`take_rate_limit(..., count=n)` spends n requests at once, all or none: a server process
reserves a few and hands them out itself (`interlink.server._ratelimit.Limiter`), so
most requests write nothing. `refund=m` gives back, in the same statement, m requests it
reserved earlier and did not use.

A row's `tat` later than one period from now (the clock was set back, or the period was
shortened between restarts) counts as an empty bucket that refills from now on, so no
bucket is ever refused for longer than its period.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

from ._schema import rate_limits

__all__ = ["RateDecision", "peek_rate_limit", "prune_rate_limits", "take_rate_limit"]

# Float slack so that a request exactly on the boundary is allowed on every backend.
_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One request's verdict and what the RateLimit headers say about its bucket."""

    allowed: bool
    limit: int
    period: float
    remaining: int
    """Requests still allowed right now after this one."""
    reset_after: float
    """Seconds until the whole quota is available again."""
    retry_after: float
    """Seconds until the next request would be allowed (0 while some remain)."""


def _upsert(engine: sa.Engine) -> type[sqlite.Insert] | type[postgresql.Insert]:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # only for PostgreSQL databases

        return postgresql.Insert
    return sqlite.Insert


def _decision(tat: float, now: float, limit: int, period: float, *, allowed: bool) -> RateDecision:
    cost = period / limit
    if allowed:
        remaining = math.floor((now + period - tat) / cost + _EPSILON)
        retry_after = 0.0 if remaining > 0 else max(0.0, tat + cost - period - now)
    else:
        remaining = 0
        retry_after = max(0.0, tat + cost - period - now)
    return RateDecision(
        allowed=allowed,
        limit=limit,
        period=period,
        remaining=max(0, min(limit, remaining)),
        reset_after=max(0.0, tat - now),
        retry_after=retry_after,
    )


def take_rate_limit(
    engine: sa.Engine,
    bucket: str,
    limit: int,
    period: float,
    *,
    now: float | None = None,
    count: int = 1,
    refund: int = 0,
) -> RateDecision:
    """Spend `count` requests from `bucket` (`limit` per `period` seconds) if that many are
    left, after giving back `refund` requests reserved earlier and not used."""
    if limit < 1 or period <= 0:
        raise ValueError("a rate limit needs limit >= 1 and period > 0")
    if not 1 <= count <= limit or refund < 0:
        raise ValueError("count is 1..limit and refund >= 0")
    now = time.time() if now is None else now
    cost = period / limit
    table = rate_limits
    full = now + period  # the latest tat a bucket can hold (see _clamped)
    stored = sa.case((table.c.tat > full, sa.literal(full)), else_=table.c.tat)
    given_back = stored - refund * cost
    later = sa.case((given_back > now, given_back), else_=sa.literal(now)) + count * cost
    statement = (
        _upsert(engine)(table)
        .values(bucket=bucket, tat=now + count * cost)
        .on_conflict_do_update(
            index_elements=[table.c.bucket],
            set_={"tat": later},
            where=later - now <= period + _EPSILON,
        )
        .returning(table.c.tat)
    )
    with engine.begin() as conn:
        tat = conn.execute(statement).scalar()
        if tat is not None:
            return _decision(float(tat), now, limit, period, allowed=True)
        held = conn.execute(sa.select(table.c.tat).where(table.c.bucket == bucket)).scalar()
        if held is not None and float(held) > full:
            # Written by a clock that ran ahead, or under a longer period: store the empty
            # bucket it stands for, so that it refills from now on.
            conn.execute(
                sa.update(table)
                .where(table.c.bucket == bucket, table.c.tat > full)
                .values(tat=full)
            )
    tat = _clamped(float(held) if held is not None else now, now, period)
    return _decision(tat, now, limit, period, allowed=False)


def _clamped(tat: float, now: float, period: float) -> float:
    """`tat`, or `now + period` (an empty bucket) when it is later than that.

    A bucket never holds more than one period of requests, so a later `tat` was written
    by a clock that has since been set back, or under a longer period than today's
    config. Taken as it is, it would refuse every request until the clock caught up: a
    day's lockout after a clock that ran a day ahead."""
    return min(tat, now + period)


def peek_rate_limit(
    engine: sa.Engine, bucket: str, limit: int, period: float, *, now: float | None = None
) -> RateDecision:
    """Whether a request would be allowed now, without spending anything."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        held = conn.execute(
            sa.select(rate_limits.c.tat).where(rate_limits.c.bucket == bucket)
        ).scalar()
    tat = _clamped(float(held) if held is not None else now, now, period)
    allowed = max(tat, now) + period / limit - now <= period + _EPSILON
    return _decision(tat, now, limit, period, allowed=allowed)


def prune_rate_limits(engine: sa.Engine, *, now: float | None = None) -> int:
    """Delete buckets that have refilled completely (a missing row means a full bucket)."""
    now = time.time() if now is None else now
    with engine.begin() as conn:
        return conn.execute(sa.delete(rate_limits).where(rate_limits.c.tat <= now)).rowcount
