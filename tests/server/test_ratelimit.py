"""Per-key, per-route limits: 429 with Retry-After and RateLimit headers; others unaffected."""

from __future__ import annotations

import re
import threading

from interlink.config import RouteLimit
from interlink.server._ratelimit import RouteLimits
from interlink.store import Store, prune_rate_limits, take_rate_limit

from .conftest import assert_error

_INLINE = re.compile(r"^limit=(\d+), remaining=(\d+), reset=(\d+)$")


async def test_a_key_over_its_limit_gets_429_while_a_second_key_is_unaffected(make_api):
    api = await make_api(server={"rate_limits": {"POST /jobs": "3/min", "default": "50/min"}})
    api.new_key("second", "write")
    remaining = []
    for _ in range(3):
        response = await api.post("/jobs", json={"kind": "noop"}, scope="write")
        assert response.status_code == 202
        assert response.headers["ratelimit-policy"] == "3;w=60"
        remaining.append(int(_INLINE.match(response.headers["ratelimit"]).group(2)))
    assert remaining == [2, 1, 0]

    refused = await api.post("/jobs", json={"kind": "noop"}, scope="write")
    error = assert_error(refused, 429, "RATE_LIMITED")
    assert "POST /jobs" in error["message"]
    limit, left, reset = map(int, _INLINE.match(refused.headers["ratelimit"]).groups())
    assert (limit, left) == (3, 0) and 55 <= reset <= 60
    assert 19 <= int(refused.headers["retry-after"]) <= 20  # one request every 20 s
    assert refused.headers["ratelimit-policy"] == "3;w=60"

    # The same key's other routes have their own (default) bucket ...
    listed = await api.get("/jobs", scope="write")
    assert listed.status_code == 200 and len(listed.json()["data"]) == 3
    assert listed.headers["ratelimit-policy"] == "50;w=60"
    # ... and another key its own buckets: no throttling at all.
    for _ in range(3):
        response = await api.post("/jobs", json={"kind": "noop"}, scope="second")
        assert response.status_code == 202
    assert_error(await api.post("/jobs", json={"kind": "noop"}, scope="write"), 429, "RATE_LIMITED")


async def test_public_routes_are_not_rate_limited(make_api):
    api = await make_api(server={"rate_limits": {"default": "2/min"}})
    for _ in range(5):
        response = await api.client.get("/api/v1/health")
        assert response.status_code == 200 and "ratelimit" not in response.headers


def test_route_keys_match_templates_and_fall_back_to_default():
    limits = RouteLimits(
        {
            "default": RouteLimit(limit=100, period=60),
            "POST /jobs": RouteLimit(limit=10, period=60),
            "POST /jobs/{id}/cancel": RouteLimit(limit=5, period=60),
            "GET /runs": RouteLimit(limit=7, period=1),
        }
    )
    assert limits.route("POST", "/api/v1/jobs") == ("POST /jobs", RouteLimit(limit=10, period=60))
    assert limits.route("POST", "/api/v1/jobs/")[0] == "POST /jobs"
    assert limits.route("POST", "/api/v1/jobs/17/cancel")[0] == "POST /jobs/{id}/cancel"
    assert limits.route("GET", "/api/v1/jobs")[0] == "default"
    assert limits.route("GET", "/api/v1/runs")[0] == "GET /runs"
    assert limits.route("GET", "/api/v1/runs/3")[0] == "default"
    assert limits.route("POST", "/api/v1/jobs/17/cancelled")[0] == "default"


def test_gcra_allows_the_burst_then_one_request_per_interval(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'limits.db'}")
    now = 1_000.0
    verdicts = [take_rate_limit(store.engine, "b", 4, 60, now=now) for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True] * 4 + [False] * 2
    assert [v.remaining for v in verdicts] == [3, 2, 1, 0, 0, 0]
    assert verdicts[-1].retry_after == 15.0 and verdicts[-1].reset_after == 60.0
    assert not take_rate_limit(store.engine, "b", 4, 60, now=now + 14.9).allowed
    assert take_rate_limit(store.engine, "b", 4, 60, now=now + 15).allowed
    assert not take_rate_limit(store.engine, "b", 4, 60, now=now + 15).allowed
    assert prune_rate_limits(store.engine, now=now + 30) == 0
    assert prune_rate_limits(store.engine, now=now + 1000) == 1
    store.close()


def test_concurrent_takes_never_spend_more_than_the_limit(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'limits.db'}")
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer():
        for _ in range(25):
            verdict = take_rate_limit(store.engine, "shared", 30, 3600)
            with lock:
                allowed.append(verdict.allowed)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 100 and sum(allowed) == 30
    store.close()
