"""The console guide's jobs API: its body, its 400s, X-RateLimit-* on every answer, the
per-address limit without a key, and how soon a revoked key stops working."""

from __future__ import annotations

import time

import httpx
import sqlalchemy as sa

from interlink.jobs import open_queue
from interlink.server import create_app
from interlink.store import KEY_CACHE_SECONDS, ApiKeyCache, Store, create_api_key
from interlink.store._schema import api_keys

from .conftest import API, assert_error, make_config

X_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


async def test_the_guides_body_queues_a_pipeline_run_with_its_type(api):
    sent = await api.post(
        "/jobs", json={"config": {"pipeline": "customers", "full_refresh": True}}, scope="write"
    )
    assert sent.status_code == 202, sent.text
    data = sent.json()["data"]
    assert data["status"] == "queued" and data["status_url"] == f"{API}/jobs/{data['job_id']}"
    job = (await api.get(f"/jobs/{data['job_id']}")).json()["data"]
    assert (job["type"], job["kind"], job["pipeline"]) == ("pipeline", "pipeline.run", "customers")
    assert job["args"] == {"pipeline": "customers", "full_refresh": True}

    typed = await api.post("/jobs", json={"config": {"pipeline": "stock"}, "type": "pipeline"})
    assert typed.status_code == 202
    noop = await api.post("/jobs", json={"type": "noop"})
    job = (await api.get(f"/jobs/{noop.json()['data']['job_id']}")).json()["data"]
    assert (job["type"], job["kind"]) == ("noop", "noop")
    # The flat body is still taken as before.
    assert (await api.post("/jobs", json={"pipeline": "customers"})).status_code == 202


async def test_a_body_without_config_or_pipeline_is_the_guides_400(api):
    for body in ({}, {"type": "pipeline"}, {"priority": 3}):
        error = assert_error(await api.post("/jobs", json=body), 400, "INVALID_REQUEST")
        assert "config" in error["message"], error
    error = assert_error(
        await api.post("/jobs", json={"config": {"full_refresh": True}}), 400, "INVALID_REQUEST"
    )
    assert error["details"][0]["field"] == "config.pipeline"
    assert (await api.get("/jobs")).json()["data"] == []


async def test_unknown_config_keys_are_a_400_naming_each(api):
    response = await api.post(
        "/jobs", json={"config": {"pipeline": "customers", "fullrefresh": True, "zz": 1}}
    )
    error = assert_error(response, 400, "INVALID_REQUEST")
    assert "fullrefresh" in error["message"] and "zz" in error["message"]
    assert [d["field"] for d in error["details"]] == ["config.fullrefresh", "config.zz"]


async def test_bad_or_mixed_config_values_are_422_on_their_field(api):
    error = assert_error(
        await api.post("/jobs", json={"config": {"pipeline": "customers", "limit": 0}}),
        422,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "config.limit"
    error = assert_error(
        await api.post("/jobs", json={"config": {"pipeline": "nope"}}), 422, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == "pipeline" and "nope" in error["details"][0]["issue"]
    mixed = {"config": {"pipeline": "customers"}, "pipeline": "stock"}
    error = assert_error(await api.post("/jobs", json=mixed), 422, "VALIDATION_ERROR")
    assert error["details"] == [{"field": "pipeline", "issue": "also given in config"}]
    both = {"type": "noop", "kind": "pipeline.run", "pipeline": "customers"}
    assert_error(await api.post("/jobs", json=both), 422, "VALIDATION_ERROR")


async def test_openapi_documents_config_and_type(api):
    schema = (await api.client.get(f"{API}/openapi.json")).json()["components"]["schemas"]
    create = schema["JobCreate"]["properties"]
    assert create["config"]["$ref"].endswith("/JobConfig")
    assert create["type"]["enum"] == ["pipeline", "noop"]
    assert schema["JobConfig"]["properties"]["pipeline"]["enum"] == [
        "customers",
        "customers_copy",
        "stock",
    ]
    assert "type" in schema["JobOut"]["properties"] and "kind" in schema["JobOut"]["properties"]


def _x_limits(response: httpx.Response) -> tuple[int, int, int]:
    assert all(name in response.headers for name in X_HEADERS), dict(response.headers)
    return tuple(int(response.headers[name]) for name in X_HEADERS)  # type: ignore[return-value]


async def test_every_guarded_answer_carries_x_ratelimit_headers(make_api):
    api = await make_api(server={"rate_limits": {"POST /jobs": "2/min", "default": "50/min"}})
    answers = [
        await api.get("/jobs"),  # 200
        await api.post("/jobs", json={"type": "noop"}),  # 202
        await api.get("/jobs/999"),  # 404
        await api.post("/jobs", json={"config": {"pipeline": "customers", "x": 1}}),  # 400
        await api.post("/jobs", json={"type": "noop"}, scope="read"),  # 403
        await api.post("/jobs", json={"type": "noop"}),  # 429
        await api.client.get(f"{API}/jobs"),  # 401
        await api.get("/jobs?pipline=x"),  # 422
    ]
    assert [a.status_code for a in answers] == [200, 202, 404, 400, 403, 429, 401, 422]
    now = time.time()
    for answer in answers:
        limit, remaining, reset = _x_limits(answer)
        assert 0 <= remaining <= limit
        assert now - 1 <= reset <= now + 61, (answer.status_code, reset - now)
        assert f"limit={limit}, remaining={remaining}," in answer.headers["ratelimit"]
    assert _x_limits(answers[0])[:2] == (50, 49)
    assert _x_limits(answers[5])[:2] == (2, 0) and int(answers[5].headers["retry-after"]) >= 1
    # Public paths stay unthrottled and say nothing about limits (health checks).
    health = await api.client.get(f"{API}/health")
    assert health.status_code == 200 and "x-ratelimit-limit" not in health.headers


async def test_callers_without_a_key_get_a_per_address_limit_of_their_own(tmp_path):
    config = make_config(
        f"sqlite:///{tmp_path / 'anon.db'}", server={"rate_limits": {"anonymous": "3/min"}}
    )
    store = Store.open(config.database)
    queue = open_queue(config, store)
    secret = create_api_key(store.engine, "k", "read").secret
    app = create_app(config, store=store, queue=queue)

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 1234))
        return httpx.AsyncClient(transport=transport, base_url="http://interlink.test")

    try:
        async with client("192.0.2.1") as first, client("192.0.2.2") as second:
            answers = [await first.get(f"{API}/jobs") for _ in range(4)]
            assert [a.status_code for a in answers] == [401, 401, 401, 429]
            assert [_x_limits(a)[:2] for a in answers] == [(3, 2), (3, 1), (3, 0), (3, 0)]
            assert "without a valid API key" in answers[3].json()["error"]["message"]
            # Another address has its own bucket; a key is never refused for the failures.
            assert (await second.get(f"{API}/jobs")).status_code == 401
            keyed = await first.get(f"{API}/jobs", headers={"Authorization": f"Bearer {secret}"})
            assert keyed.status_code == 200 and _x_limits(keyed)[0] == 100
    finally:
        queue.close()
        store.close()


async def test_a_key_revoked_by_another_process_stops_working_within_the_cache_bound(api):
    assert (await api.get("/jobs", scope="write")).status_code == 200
    # What `interlink apikeys revoke` in another process writes (this process's own
    # revoke_api_key empties the cache at once: test_auth.py).
    with api.store.engine.begin() as conn:
        conn.execute(
            sa.update(api_keys).where(api_keys.c.name == "write key").values(revoked_at=1.0)
        )
    revoked_at = time.monotonic()
    statuses = []
    while time.monotonic() - revoked_at < KEY_CACHE_SECONDS + 1.5:
        statuses.append((await api.get("/jobs", scope="write")).status_code)
        if statuses[-1] == 401:
            break
        time.sleep(0.1)
    assert statuses[-1] == 401, statuses
    assert time.monotonic() - revoked_at <= KEY_CACHE_SECONDS + 0.5
    assert (await api.get("/jobs", scope="read")).status_code == 200


def test_the_key_cache_trusts_a_key_for_its_ttl_and_never_a_wrong_one(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'keys.db'}")
    secret = create_api_key(store.engine, "k", "write").secret
    now = [100.0]
    cache = ApiKeyCache(store.engine, ttl=2.0, clock=lambda: now[0])
    assert cache.cached(secret) is None
    assert cache.verify(secret) is not None and cache.cached(secret) is not None
    assert cache.verify(secret + "x") is None and cache.cached(secret + "x") is None
    now[0] += 1.99
    assert cache.cached(secret) is not None
    now[0] += 0.02
    assert cache.cached(secret) is None
    store.close()
