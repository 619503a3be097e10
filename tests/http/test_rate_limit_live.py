"""The HTTP layer against a real rate-limited server (the sandbox on uvicorn, 127.0.0.1)."""

from __future__ import annotations

import asyncio
import time

import pytest

from interlink.http import ApiClient, RateLimiter, RetryPolicy, TokenBucket
from interlink.sandbox import SandboxServer, create_shop_app


async def _hammer(api: ApiClient, total: int, concurrency: int) -> list[int]:
    jobs = iter(range(total))
    ids: list[int] = []

    async def worker() -> None:
        for n in jobs:
            body = await api.get_json(f"/customers/{n % 50 + 1}")
            ids.append(body["id"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


@pytest.mark.parametrize("style", ["x-ratelimit", "ietf"])
async def test_server_driven_limits_complete_every_request_with_few_429s(style):
    app = create_shop_app(records=50, rate_limit=(40.0, 1.0, 10), rate_limit_headers=style)
    async with SandboxServer(app) as server:
        # No client-side bucket: the client learns the limit from the server alone.
        async with ApiClient(
            server.url, rate_limiter=RateLimiter(), retry=RetryPolicy(max_attempts=6)
        ) as api:
            started = time.monotonic()
            ids = await _hammer(api, total=80, concurrency=16)
            elapsed = time.monotonic() - started
            stats = api.stats
            server_stats = await api.get_json("/_stats")
    assert len(ids) == 80
    refused = stats.statuses.get(429, 0)
    assert refused == server_stats["rate_limited"]
    # After the first answers, the client waits for the server's resets instead of being
    # refused.
    # 16 requests leave before any answer says the burst of 10 is gone: 6 refusals are
    # unavoidable without a configured bucket; allow 2 more for timing, no more.
    assert refused <= 8, f"{refused} 429s"
    # 80 requests at 40/s with a burst of 10 cannot take less than (80 - 10) / 40 s.
    assert elapsed >= (80 - 10) / 40 * 0.9


async def test_client_bucket_at_the_server_rate_gets_no_429s():
    app = create_shop_app(records=50, rate_limit=(40.0, 1.0, 10))
    async with SandboxServer(app) as server:
        bucket = TokenBucket(rate=38.0, burst=8, now=time.monotonic())
        async with ApiClient(server.url, rate_limiter=RateLimiter(bucket)) as api:
            ids = await _hammer(api, total=80, concurrency=16)
            stats = api.stats
    assert len(ids) == 80
    assert stats.statuses.get(429, 0) == 0
    assert stats.rate_limit_wait_s > 0


async def test_the_request_log_shows_the_rate_limit_wait_apart_from_the_exchange(caplog):
    """`-v`'s line per request: the time is the exchange's own, the wait for the rate limit
    (at the gate, or queued behind other requests) is shown beside it, not inside it."""
    import logging
    import re

    app = create_shop_app(records=50)
    async with SandboxServer(app) as server:
        bucket = TokenBucket(rate=5.0, burst=1, now=time.monotonic())
        async with ApiClient(server.url, rate_limiter=RateLimiter(bucket)) as api:
            with caplog.at_level(logging.DEBUG, logger="interlink.http"):
                await asyncio.gather(*(api.get_json(f"/customers/{n}") for n in range(1, 5)))
    lines = [r.getMessage() for r in caplog.records if r.name == "interlink.http"]
    found = [
        re.search(r"-> 200 in ([\d.]+) ms \(attempt 1, rate-limit wait ([\d.]+) s\)", line)
        for line in lines
    ]
    assert len(found) == 4 and all(found), lines
    own = [float(m[1]) / 1000 for m in found if m]
    waits = sorted(float(m[2]) for m in found if m)
    # Four requests at 5 a second with a burst of one: 0, 0.2, 0.4 and 0.6 s at the gate.
    assert waits[-1] >= 0.5, waits
    assert max(own) < 0.15, (own, waits)
