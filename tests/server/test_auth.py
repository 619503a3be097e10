"""API keys on every /api/v1 route: 401 without a valid one, 403 for a too-small scope."""

from __future__ import annotations

import httpx
import pytest

from interlink.store import revoke_api_key, verify_api_key

from .conftest import API, assert_error


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer il_abcdefgh_not-a-real-key"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "il_abcdefgh_no-scheme"},
    ],
)
async def test_missing_or_wrong_key_is_401_with_a_bearer_challenge(api, headers):
    response = await api.client.get(f"{API}/jobs", headers=headers)
    error = assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "il_abcdefgh" not in response.text
    assert error["details"] == []


async def test_health_openapi_and_docs_need_no_key(api):
    assert (await api.client.get(f"{API}/health")).status_code == 200
    schema = await api.client.get(f"{API}/openapi.json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    docs = await api.client.get(f"{API}/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]


ROUTES = [
    ("GET", "/jobs", "read"),
    ("GET", "/jobs/1", "read"),
    ("GET", "/pipelines", "read"),
    ("GET", "/runs", "read"),
    ("GET", "/apps/shop/status", "read"),
    ("POST", "/jobs", "write"),
    ("POST", "/jobs/1/cancel", "write"),
]
SCOPES = ["read", "write", "admin"]


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
async def test_each_scope_reaches_exactly_its_routes(api, method, path, needed):
    await api.post("/jobs", json={"kind": "noop"})  # job 1 exists
    for scope in SCOPES:
        response = await api.client.request(
            method, API + path, headers=api.auth(scope), json={"kind": "noop"}
        )
        allowed = SCOPES.index(scope) >= SCOPES.index(needed)
        if allowed:
            # Past auth: 409 for the second cancel.
            assert response.status_code in (200, 202, 409), (scope, response.text)
        else:
            error = assert_error(response, 403, "FORBIDDEN")
            assert needed in error["message"]


async def test_a_revoked_key_fails_on_the_next_request(api):
    assert (await api.get("/jobs", scope="write")).status_code == 200
    key = verify_api_key(api.store.engine, api.keys["write"])
    assert key is not None and key.last_used_at is not None
    revoke_api_key(api.store.engine, key.id)
    response = await api.get("/jobs", scope="write")
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert (await api.get("/jobs", scope="read")).status_code == 200


async def test_failed_attempts_are_rate_limited_per_address(make_api):
    api = await make_api(server={"rate_limits": {"default": "5/min"}})
    wrong = {"Authorization": "Bearer il_zzzzzzzz_guess"}
    statuses = [(await api.client.get(f"{API}/jobs", headers=wrong)).status_code for _ in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    blocked = await api.client.get(f"{API}/jobs", headers=wrong)
    assert_error(blocked, 429, "RATE_LIMITED")
    assert int(blocked.headers["retry-after"]) >= 1
    # A valid key from the same address is never refused for the failures (test_edges.py).
    assert (await api.get("/jobs")).status_code == 200
    # Another address is not affected.
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app, client=("10.1.2.3", 5000)),
        base_url="http://interlink.test",
    )
    async with elsewhere:
        assert (await elsewhere.get(f"{API}/jobs", headers=api.auth())).status_code == 200
        assert (await elsewhere.get(f"{API}/jobs", headers=wrong)).status_code == 401
