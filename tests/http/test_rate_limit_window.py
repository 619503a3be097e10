"""A closed rate-limit window holds the whole connection, against a real hostile server.

The server (Starlette on uvicorn, 127.0.0.1) answers one request of a burst with a refusal
or an exhausted quota and records when every request arrived. Nothing of the connection
may arrive after that answer and before the moment it named, apart from requests that
were already on the wire when the client read it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from interlink.config import ConnectionConfig
from interlink.http import ApiClient
from interlink.sandbox import SandboxServer

POOL = 4
"""The connection's max_connections: fewer than the concurrent requests, so some queue."""

ON_THE_WIRE = 0.25
"""Seconds after the refusal during which an arrival may have been sent before it was read."""

# One fault: (status, headers, deadline) from the wall-clock time it is answered.
Fault = Callable[[float], tuple[int, dict[str, str], float]]


def _retry_after_seconds(now: float) -> tuple[int, dict[str, str], float]:
    return 429, {"Retry-After": "1"}, now + 1.0


def _retry_after_date_503(now: float) -> tuple[int, dict[str, str], float]:
    # An HTTP date has whole seconds: name one at least a second away.
    when = math.floor(now) + 2.0
    date = format_datetime(datetime.fromtimestamp(when, tz=UTC), usegmt=True)
    return 503, {"Retry-After": date}, when


def _x_ratelimit_429(now: float) -> tuple[int, dict[str, str], float]:
    reset = now + 1.0
    headers = {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{reset:.3f}",
    }
    return 429, headers, reset


def _x_ratelimit_exhausted_200(now: float) -> tuple[int, dict[str, str], float]:
    reset = now + 1.0
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{reset:.3f}"}
    return 200, headers, reset


def _ietf_429(now: float) -> tuple[int, dict[str, str], float]:
    headers = {"RateLimit-Policy": '"default";q=10;w=1', "RateLimit": '"default";r=0;t=1'}
    return 429, headers, now + 1.0


FAULTS: dict[str, Fault] = {
    "429 Retry-After seconds": _retry_after_seconds,
    "503 Retry-After HTTP date": _retry_after_date_503,
    "429 X-RateLimit-Remaining 0": _x_ratelimit_429,
    "200 X-RateLimit-Remaining 0": _x_ratelimit_exhausted_200,
    "429 IETF RateLimit r=0": _ietf_429,
}


class HostileApi:
    """Answers request number `at` with `fault`, every other one after `slow` seconds.

    Records the wall-clock arrival of every request, when the fault was answered and the
    deadline it named, and how many requests were being served at each arrival.
    """

    def __init__(self, fault: Fault, *, at: int, slow: float) -> None:
        self.fault = fault
        self.at = at
        self.slow = slow
        self.arrivals: list[float] = []
        self.in_flight_at_arrival: list[int] = []
        self.closed_at: float | None = None
        self.deadline: float | None = None
        self._in_flight = 0
        self.app = Starlette(routes=[Route("/items/{n}", self.item)])

    async def item(self, request: Request) -> Response:
        arrived = time.time()
        number = len(self.arrivals)
        self.arrivals.append(arrived)
        self._in_flight += 1
        self.in_flight_at_arrival.append(self._in_flight)
        try:
            if number == self.at:
                status, headers, deadline = self.fault(arrived)
                self.closed_at, self.deadline = time.time(), deadline
                return JSONResponse({"message": "slow down"}, status_code=status, headers=headers)
            await asyncio.sleep(self.slow)
            return JSONResponse({"id": request.path_params["n"]})
        finally:
            self._in_flight -= 1


def _connection(url: str) -> ConnectionConfig:
    return ConnectionConfig.model_validate(
        {"base_url": url, "max_connections": POOL, "retry": {"max_attempts": 4}}
    )


async def _burst(api: ApiClient, total: int, concurrency: int) -> list[int]:
    numbers = iter(range(total))
    statuses: list[int] = []

    async def worker() -> None:
        for n in numbers:
            response = await api.get(f"/items/{n}")
            statuses.append(response.status_code)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
async def test_nothing_arrives_inside_the_window_the_server_closed(fault: str) -> None:
    hostile = HostileApi(FAULTS[fault], at=5, slow=0.5)
    async with SandboxServer(hostile.app) as server:
        # A fresh name per test: the limiter is shared per connection name in the process.
        name = f"hostile-window-{fault}-{time.monotonic_ns()}"
        async with ApiClient.from_config(name, _connection(server.url)) as api:
            statuses = await _burst(api, total=16, concurrency=16)
    assert statuses.count(200) == 16, statuses

    # The fault fired and named a real window.
    assert hostile.closed_at is not None and hostile.deadline is not None
    closed_at, deadline = hostile.closed_at, hostile.deadline
    assert deadline - closed_at >= 0.5

    inside = [
        round(t - closed_at, 3) for t in hostile.arrivals if closed_at + ON_THE_WIRE < t < deadline
    ]
    assert inside == [], f"requests arrived inside the closed window (s after it closed): {inside}"

    # Requests were waiting when it fired: two waves of POOL were out before the refusal,
    # the rest (and a refused request, retried) went after the deadline.
    early = [t for t in hostile.arrivals if t <= closed_at + ON_THE_WIRE]
    after = [t for t in hostile.arrivals if t >= deadline]
    assert len(early) <= 2 * POOL
    assert len(after) >= 16 - 2 * POOL
    assert len(early) + len(after) == len(hostile.arrivals)


async def test_concurrency_returns_after_an_exhausted_quota_and_headerless_answers() -> None:
    hostile = HostileApi(_x_ratelimit_exhausted_200, at=5, slow=0.1)
    async with SandboxServer(hostile.app) as server:
        name = f"hostile-recovery-{time.monotonic_ns()}"
        async with ApiClient.from_config(name, _connection(server.url)) as api:
            started = time.monotonic()
            statuses = await _burst(api, total=96, concurrency=16)
            elapsed = time.monotonic() - started
    assert statuses.count(200) == 96
    assert hostile.deadline is not None
    # Once the window has passed and a header-less answer came back, the limiter knows no
    # quota any more: requests go POOL at a time again, not one by one.
    settled = hostile.deadline + 0.3
    later = [
        in_flight
        for arrived, in_flight in zip(hostile.arrivals, hostile.in_flight_at_arrival, strict=True)
        if arrived > settled
    ]
    assert len(later) >= 40, f"only {len(later)} requests after the window"
    assert max(later) == POOL, f"at most {max(later)} in flight after the window"
    # 96 requests of 0.1 s, POOL at a time, plus the 1 s window: far below one at a time.
    assert elapsed < 1.0 + 96 * 0.1 / 2
