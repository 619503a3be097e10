"""A hostile review of the jobs API of issue 16 section 3: the key cache, the batched rate
limits, the per-address bucket, the guide's body and the headers. Each test stands for a
way the API was attacked. All failed on fe9403a but three that held from the start: a
forged X-Forwarded-For, the headers on a 500 and a 413, one Idempotency-Key across both
body shapes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from interlink.client import JobsClient
from interlink.config import RouteLimit
from interlink.jobs import open_queue
from interlink.server import create_app
from interlink.server._ratelimit import Limiter
from interlink.store import (
    ApiKeyCache,
    Store,
    create_api_key,
    peek_rate_limit,
    revoke_api_key,
    take_rate_limit,
)
from tests.jobs.procrastinate_schema import fresh_schema

from .conftest import API, assert_error, make_config


def _statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    return seen


# -- the key cache ------------------------------------------------------------------------


def test_a_key_verified_while_it_is_being_revoked_is_not_kept(tmp_path):
    # revoke_api_key bumped its counter before writing: a lookup in between saw the key
    # still valid, was cached under the new counter and kept working for the whole ttl.
    store = Store.open(f"sqlite:///{tmp_path / 'keys.db'}")
    created = create_api_key(store.engine, "k", "write")
    cache = ApiKeyCache(store.engine, ttl=60.0)
    looked_up: list[object] = []

    def verify_meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE interlink_api_keys SET revoked_at") and not looked_up:
            looked_up.append(cache.verify(created.secret))

    sa.event.listen(store.engine, "before_cursor_execute", verify_meanwhile)
    revoke_api_key(store.engine, created.key.id)
    sa.event.remove(store.engine, "before_cursor_execute", verify_meanwhile)
    assert looked_up and looked_up[0] is not None  # the lookup ran before the write
    assert cache.cached(created.secret) is None
    assert cache.verify(created.secret) is None
    store.close()


# -- the shared buckets -------------------------------------------------------------------

T = 2_000_000_000.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def limits_store(request, tmp_path):
    """A store on each backend: the clamp is SQL that both must run."""
    if request.param == "sqlite":
        store = Store.open(f"sqlite:///{tmp_path / 'limits.db'}")
        yield store
        store.close()
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_review16") as url:
        store = Store.open(url)
        yield store
        store.close()


def test_a_clock_set_back_locks_a_bucket_for_one_period_at_most(limits_store):
    # A server whose clock ran a day ahead, then was corrected (NTP): the row's tat was a
    # day in the future and every request was refused for that day.
    store = limits_store
    for _ in range(3):
        assert take_rate_limit(store.engine, "b", 10, 60, now=T + 86_400).allowed
    refused = take_rate_limit(store.engine, "b", 10, 60, now=T)
    assert not refused.allowed
    assert refused.retry_after <= 6.0 + 1e-6 and refused.reset_after <= 60.0 + 1e-6
    assert peek_rate_limit(store.engine, "b", 10, 60, now=T).reset_after <= 60.0 + 1e-6
    assert take_rate_limit(store.engine, "b", 10, 60, now=T + 6.0).allowed


def test_a_period_shortened_between_restarts_takes_effect(limits_store):
    # 100/hour spent, then the config says 100/min: the old row still said "an hour".
    store = limits_store
    for _ in range(100):
        take_rate_limit(store.engine, "b", 100, 3600, now=T)
    later = take_rate_limit(store.engine, "b", 100, 60, now=T + 60)
    assert later.retry_after <= 0.6 + 1e-6, later
    assert take_rate_limit(store.engine, "b", 100, 60, now=T + 61).allowed


def test_reset_counts_the_requests_handed_out_not_the_batch_reserved(tmp_path):
    # 100 per hour, batches of 5: after one request the quota is full again in 36 s, not
    # in the 180 s the reserved batch costs; Remaining and Reset must tell the same story.
    store = Store.open(f"sqlite:///{tmp_path / 'limits.db'}")
    limiter = Limiter(store.engine)
    limit = RouteLimit(limit=100, period=3600)

    async def take(n: int) -> list[tuple[int, float]]:
        out = []
        for _ in range(n):
            decision = await limiter.take("b", limit)
            out.append((decision.remaining, decision.reset_after))
        return out

    for remaining, reset_after in asyncio.run(take(7)):
        assert reset_after == pytest.approx((100 - remaining) * 36, abs=1.0)
    store.close()


def test_a_refused_bucket_is_refused_without_a_write_until_it_can_allow(tmp_path):
    # Over its limit, each request cost two or four statements and a thread hop, more
    # than an allowed one (a fifth of a statement): a flood was cheapest to refuse last.
    store = Store.open(f"sqlite:///{tmp_path / 'limits.db'}")
    now = [0.0]
    limiter = Limiter(store.engine, clock=lambda: now[0], wall=lambda: T + now[0])
    limit = RouteLimit(limit=100, period=3600)
    seen = _statements(store.engine)

    async def take(n: int) -> list[bool]:
        return [(await limiter.take("b", limit)).allowed for _ in range(n)]

    assert all(asyncio.run(take(100)))
    before = len(seen)
    refused = asyncio.run(take(50))
    assert not any(refused)
    assert len(seen) - before <= 4, seen[before:]
    now[0] += 1.5  # past the lease: the database is asked again (still refused)
    before = len(seen)
    assert not any(asyncio.run(take(1)))
    assert len(seen) > before
    store.close()


def test_a_remembered_refusal_counts_down_its_retry_after(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'limits.db'}")
    now = [0.0]
    limiter = Limiter(store.engine, clock=lambda: now[0], wall=lambda: time.time() + now[0])
    limit = RouteLimit(limit=2, period=10)

    async def take() -> Any:
        return await limiter.take("b", limit)

    assert asyncio.run(take()).allowed and asyncio.run(take()).allowed
    first = asyncio.run(take())
    now[0] += 0.5
    second = asyncio.run(take())
    assert not first.allowed and not second.allowed and second.remaining == 0
    assert second.retry_after == pytest.approx(first.retry_after - 0.5, abs=0.05)
    now[0] += 5.0  # one request has come back
    assert asyncio.run(take()).allowed
    store.close()


# -- the per-address bucket ---------------------------------------------------------------


async def _anonymous(app: Any, address: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(address, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://interlink.test") as c:
        return await c.get(f"{API}/jobs")


async def test_one_ipv6_client_cannot_take_a_fresh_bucket_per_address(tmp_path):
    # Anyone with IPv6 has a /64 at least: 2^64 addresses, one fresh bucket (and one row)
    # each. The /64 is the client, as every IPv6 rate limiter counts it.
    config = make_config(
        f"sqlite:///{tmp_path / 'anon.db'}",
        server={"rate_limits": {"anonymous": "3/min"}, "trusted_proxies": ["10.0.0.0/8"]},
    )
    store = Store.open(config.database)
    queue = open_queue(config, store)
    app = create_app(config, store=store, queue=queue)
    try:
        answers = [await _anonymous(app, f"2001:db8:0:7::{n + 1:x}") for n in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert (await _anonymous(app, "2001:db8:0:8::1")).status_code == 401  # another /64
        # An IPv4 client seen through a dual-stack socket is the same client.
        v4 = [await _anonymous(app, "192.0.2.9") for _ in range(3)]
        assert [a.status_code for a in v4] == [401, 401, 401]
        assert (await _anonymous(app, "::ffff:192.0.2.9")).status_code == 429
        rows = store.engine.connect().execute(sa.text("SELECT bucket FROM interlink_rate_limits"))
        buckets = sorted(row[0] for row in rows)
        assert not any("2001:db8:0:7::" in b and "/64" not in b for b in buckets), buckets
    finally:
        queue.close()
        store.close()


async def test_x_forwarded_for_from_an_untrusted_peer_picks_no_bucket(tmp_path):
    config = make_config(
        f"sqlite:///{tmp_path / 'xff.db'}",
        server={"rate_limits": {"anonymous": "2/min"}, "trusted_proxies": ["10.0.0.0/8"]},
    )
    store = Store.open(config.database)
    queue = open_queue(config, store)
    app = create_app(config, store=store, queue=queue)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.5", 1234))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            statuses = [
                (
                    await client.get(f"{API}/jobs", headers={"X-Forwarded-For": f"203.0.113.{n}"})
                ).status_code
                for n in range(3)
            ]
        assert statuses == [401, 401, 429]
    finally:
        queue.close()
        store.close()


# -- headers on every answer and the guide's body -----------------------------------------


async def test_a_500_and_a_413_carry_the_rate_limit_headers(make_api, monkeypatch):
    api = await make_api(server={"max_body": 100})

    def broken(job_id: int) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(api.queue, "get", broken)
    failed = await api.get("/jobs/1")
    assert_error(failed, 500, "INTERNAL_ERROR")
    large = await api.post("/jobs", json={"config": {"pipeline": "x" * 200}})
    assert_error(large, 413, "PAYLOAD_TOO_LARGE")
    for answer in (failed, large):
        assert int(answer.headers["x-ratelimit-remaining"]) < int(
            answer.headers["x-ratelimit-limit"]
        )


async def test_the_same_idempotency_key_in_either_body_shape_is_one_job(api):
    headers = {"Idempotency-Key": "nightly-1"}
    guide = await api.post("/jobs", json={"config": {"pipeline": "customers"}}, headers=headers)
    flat = await api.post("/jobs", json={"pipeline": "customers"}, headers=headers)
    assert guide.status_code == flat.status_code == 202
    assert guide.json()["data"]["job_id"] == flat.json()["data"]["job_id"]
    other = await api.post("/jobs", json={"config": {"pipeline": "stock"}}, headers=headers)
    assert_error(other, 409, "CONFLICT")


async def test_a_noop_with_a_config_that_names_no_pipeline_is_refused(api):
    # The schema's JobConfig requires `pipeline`; a noop's config without one was queued
    # (schemathesis: a request the schema forbids, accepted with 202).
    refused = await api.post("/jobs", json={"type": "noop", "config": {"limit": 3}})
    assert_error(refused, 400, "INVALID_REQUEST")
    assert refused.json()["error"]["details"] == [
        {"field": "config.pipeline", "issue": "required: config holds a pipeline run's fields"}
    ]
    plain = await api.post("/jobs", json={"type": "noop"})
    assert plain.status_code == 202


def test_the_clients_error_for_kind_beside_config_names_what_to_do():
    # "put kind in the config" sent users to a 400 (config takes no kind).
    client = JobsClient("http://127.0.0.1:9", "il_x_y")
    with pytest.raises(ValueError) as caught:
        client.submit_job(config={"pipeline": "customers"}, kind="noop")
    assert "type=" in str(caught.value) and "kind in the config" not in str(caught.value)
    client.close()


async def test_unknown_config_keys_are_named_without_echoing_the_whole_body(api):
    # 30,000 made-up keys (350 kB) came back as a 1.6 MB error: every key in the message
    # and once more in the details.
    config = {f"k{n:05}": 1 for n in range(30_000)} | {"pipeline": "customers"}
    config["x" * 5000] = 1
    response = await api.post("/jobs", json={"config": config})
    error = assert_error(response, 400, "INVALID_REQUEST")
    assert len(response.content) < 2000, len(response.content)
    assert "k00000, k00001" in error["message"] and "and 29991 more" in error["message"]
    assert [d["field"] for d in error["details"]][:2] == ["config.k00000", "config.k00001"]
    assert len(error["details"]) == 10


async def test_a_flat_body_of_many_unknown_keys_gets_a_short_422(tmp_path):
    """A 350 kB body of made-up keys was echoed back as a 1.8 MB list of problems."""
    from tests.server.conftest import make_config

    config = make_config(f"sqlite:///{tmp_path / 'echo.db'}")
    store = Store.open(config.database)
    queue = open_queue(config, store)
    secret = create_api_key(store.engine, "k", "write").secret
    app = create_app(config, store=store, queue=queue, worker=False)
    body = {"pipeline": "customers", **{f"made_up_{n:05}_" + "x" * 20: 1 for n in range(5000)}}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post(
            "/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
    queue.close()
    store.close()
    assert answer.status_code == 422
    details = answer.json()["error"]["details"]
    assert len(details) == 21 and details[-1] == {
        "field": "body",
        "issue": "and 4980 more problems",
    }
    assert len(answer.content) < 10_000


def _silent_server() -> tuple[Any, int]:
    """A socket that accepts connections and never answers."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server, server.getsockname()[1]


def test_a_wait_on_a_server_that_never_answers_ends_at_its_timeout() -> None:
    """`wait_for_job(timeout=1)` against a hung server took 121 s (4 attempts of a 30 s read
    timeout) and raised a TransportError, not a TimeoutError."""
    from interlink.client import JobWaitTimeoutError

    server, port = _silent_server()
    try:
        client = JobsClient(f"http://127.0.0.1:{port}", api_key="il_abcdefgh_" + "x" * 43)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            client.wait_for_job(7, timeout=1)
        assert isinstance(info.value, JobWaitTimeoutError) and info.value.job_id == 7
        assert time.monotonic() - started < 5
        client.close()
    finally:
        server.close()


async def test_an_async_wait_on_a_server_that_never_answers_ends_at_its_timeout() -> None:
    from interlink.client import AsyncJobsClient, JobWaitTimeoutError

    server, port = _silent_server()
    try:
        async with AsyncJobsClient(
            f"http://127.0.0.1:{port}", api_key="il_abcdefgh_" + "x" * 43
        ) as client:
            started = time.monotonic()
            with pytest.raises(JobWaitTimeoutError):
                await client.wait_for_job(7, timeout=1)
            assert time.monotonic() - started < 5
    finally:
        server.close()
