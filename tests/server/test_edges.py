"""The API's edges, in process: failed-auth throttling, proxies, redirects, methods, framing
and the security headers. The same edges over real sockets are in test_hostile.py."""

from __future__ import annotations

import httpx
import pytest

from .conftest import API, assert_error

WRONG = {"Authorization": "Bearer il_zzzzzzzz_guess"}


def client_at(api, address: str) -> httpx.AsyncClient:
    """Another client of the same app, connecting from `address`."""
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False, client=(address, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://interlink.test")


# -- 1. failed-authentication throttling -------------------------------------------------


async def test_a_valid_key_is_never_refused_for_its_address_failures(make_api):
    api = await make_api(server={"rate_limits": {"default": "5/min"}})
    statuses = [
        (await api.client.get(f"{API}/jobs", headers=WRONG)).status_code for _ in range(105)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    for scope in ("read", "write", "admin"):
        response = await api.get("/jobs", scope=scope)
        assert response.status_code == 200, (scope, response.text)
    # Unknown keys (and none at all) from that address are still throttled.
    assert_error(await api.client.get(f"{API}/jobs", headers=WRONG), 429, "RATE_LIMITED")
    assert_error(await api.client.get(f"{API}/jobs"), 429, "RATE_LIMITED")


async def test_forwarded_for_counts_only_when_the_peer_is_a_trusted_proxy(make_api):
    api = await make_api(
        server={"rate_limits": {"default": "3/min"}, "trusted_proxies": ["10.0.0.0/8", "::1"]},
        client=("10.0.0.7", 40000),
    )
    attacker = {**WRONG, "X-Forwarded-For": "203.0.113.9"}
    statuses = [
        (await api.client.get(f"{API}/jobs", headers=attacker)).status_code for _ in range(5)
    ]
    assert statuses == [401] * 3 + [429] * 2
    # Another client behind the same proxy is not locked out by the attacker ...
    neighbour = {**WRONG, "X-Forwarded-For": "198.51.100.4"}
    assert (await api.client.get(f"{API}/jobs", headers=neighbour)).status_code == 401
    # ... and the attacker cannot escape by prepending an address of its choice: the
    # right-most address the trusted proxies did not add is the client.
    spoofed = {**WRONG, "X-Forwarded-For": "198.51.100.77, 203.0.113.9, 10.0.0.3"}
    assert (await api.client.get(f"{API}/jobs", headers=spoofed)).status_code == 429
    # A valid key passes whatever its address did.
    forwarded = {**api.auth("read"), "X-Forwarded-For": "203.0.113.9"}
    assert (await api.client.get(f"{API}/jobs", headers=forwarded)).status_code == 200

    # A peer that is not a trusted proxy cannot pick its address with the header.
    async with client_at(api, "192.0.2.1") as direct:
        assert (await direct.get(f"{API}/jobs", headers=attacker)).status_code == 401


async def test_trusted_proxies_must_be_addresses_or_networks(make_api):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="trusted_proxies"):
        await make_api(server={"trusted_proxies": ["not-an-address"]})


# -- 2. no redirects ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/jobs/", "/pipelines/", "/runs/", "/jobs/1/"])
async def test_a_trailing_slash_is_404_never_a_redirect(api, path):
    response = await api.get(path, headers={"Host": "evil.example"})
    assert_error(response, 404, "NOT_FOUND")
    assert "location" not in response.headers
    assert "evil.example" not in response.text


# -- 3. methods --------------------------------------------------------------------------


async def test_head_answers_as_get_without_a_body(api):
    await api.post("/jobs", json={"kind": "noop"})
    get = await api.get("/jobs/1", scope="read")
    head = await api.client.head(f"{API}/jobs/1", headers=api.auth("read"))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["x-request-id"].startswith("req_")
    assert "ratelimit" in head.headers
    health = await api.client.head(f"{API}/health")
    assert health.status_code == 200 and health.content == b""
    missing = await api.client.head(f"{API}/jobs/99", headers=api.auth("read"))
    assert missing.status_code == 404 and missing.content == b""
    anonymous = await api.client.head(f"{API}/jobs")
    assert anonymous.status_code == 401 and anonymous.content == b""
    # HEAD of a POST-only route is a 405 like GET's.
    cancel = await api.client.head(f"{API}/jobs/1/cancel", headers=api.auth())
    assert cancel.status_code == 405 and cancel.headers["allow"] == "POST"


@pytest.mark.parametrize("scope", ["read", "write", "admin"])
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FROB"])
async def test_a_wrong_method_is_405_whatever_the_keys_scope(api, scope, method):
    response = await api.client.request(method, f"{API}/jobs", headers=api.auth(scope))
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, HEAD, POST"


async def test_a_wrong_method_without_a_key_is_401_and_a_real_route_still_403(api):
    assert_error(await api.client.put(f"{API}/jobs/1"), 401, "UNAUTHORIZED")
    refused = await api.post("/jobs", json={"kind": "noop"}, scope="read")
    error = assert_error(refused, 403, "FORBIDDEN")
    assert "'write'" in error["message"]


# -- 4. ambiguous framing ----------------------------------------------------------------


async def test_content_length_and_chunked_together_are_refused(api):
    response = await api.post(
        "/jobs",
        content=b'{"kind": "noop"}',
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert "content-length" in response.request.headers
    error = assert_error(response, 400, "INVALID_REQUEST")
    assert error["details"][0]["field"] == "Transfer-Encoding"
    assert response.headers["connection"] == "close"
    assert (await api.get("/jobs")).json()["data"] == []


# -- 5. security headers -----------------------------------------------------------------

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'"


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.request.url
    assert headers["cache-control"] == "no-store", response.request.url
    assert headers["referrer-policy"] == "no-referrer", response.request.url
    assert headers["x-frame-options"] == "DENY", response.request.url
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


async def test_every_answer_carries_the_security_headers(api, monkeypatch):
    answers = [
        await api.client.get(f"{API}/health"),
        await api.get("/jobs"),
        await api.post("/jobs", json={"kind": "noop"}),
        await api.client.get(f"{API}/jobs"),
        await api.get("/nothing"),
        await api.client.get("/elsewhere"),
        await api.client.delete(f"{API}/jobs", headers=api.auth()),
        await api.get("/jobs", params={"limit": "x"}),
        await api.client.get(f"{API}/openapi.json"),
    ]

    def broken(job_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(api.queue, "get", broken)
    answers.append(await api.get("/jobs/1"))
    assert [r.status_code for r in answers] == [200, 200, 202, 401, 404, 404, 405, 422, 200, 500]
    for response in answers:
        assert_security_headers(response)
        assert response.headers["content-security-policy"] == STRICT_CSP

    docs = await api.client.get(f"{API}/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    assert_security_headers(docs)
    assert "default-src 'none'" in docs.headers["content-security-policy"]
