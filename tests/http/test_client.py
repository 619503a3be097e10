from __future__ import annotations

import json

import httpx
import pytest

from interlink.errors import (
    ApiError,
    AuthError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
)
from interlink.http import ApiClient, RetryPolicy

NO_RETRY = RetryPolicy(max_attempts=1)


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "method": request.method,
            "url": str(request.url),
            "headers": dict(request.headers),
            "body": request.content.decode(),
        },
    )


def client(handler=echo, **kwargs) -> ApiClient:
    return ApiClient("https://api.test/v1/", transport=httpx.MockTransport(handler), **kwargs)


async def test_relative_and_absolute_urls():
    async with client() as api:
        assert (await api.get_json("/customers"))["url"] == "https://api.test/v1/customers"
        assert (await api.get_json("customers/7"))["url"] == "https://api.test/v1/customers/7"
        assert (await api.get_json(""))["url"] == "https://api.test/v1"
        other = await api.get_json("https://other.test/x")
        assert other["url"] == "https://other.test/x"


async def test_params_merge_with_defaults_and_encode_values():
    async with client(params={"api_version": "3"}) as api:
        body = await api.get_json(
            "/search?fixed=1", params={"q": "a b&c", "page": 2, "active": True, "tag": ["x", "y"]}
        )
    url = httpx.URL(body["url"])
    assert url.params.get("fixed") == "1"
    assert url.params.get("api_version") == "3"
    assert url.params.get("q") == "a b&c"
    assert url.params.get("page") == "2"
    assert url.params.get("active") == "true"
    assert url.params.get_list("tag") == ["x", "y"]


async def test_default_and_connection_headers():
    async with client(headers={"X-Tenant": "acme", "Accept": "application/vnd.api+json"}) as api:
        body = await api.get_json("/x", headers={"X-Trace": "t1"})
    headers = body["headers"]
    assert headers["user-agent"].startswith("interlink/")
    assert headers["accept"] == "application/vnd.api+json"
    assert headers["x-tenant"] == "acme"
    assert headers["x-trace"] == "t1"


async def test_json_body_is_serialised_with_content_type():
    async with client() as api:
        response = await api.post("/orders", json={"sku": "A", "qty": 2})
        custom = await api.post(
            "/orders",
            json={"data": {"type": "orders"}},
            headers={"Content-Type": "application/vnd.api+json"},
        )
    body = response.json()
    assert json.loads(body["body"]) == {"sku": "A", "qty": 2}
    assert body["headers"]["content-type"] == "application/json"
    assert custom.json()["headers"]["content-type"] == "application/vnd.api+json"


def error(status: int, body: object = None, headers: dict[str, str] | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, (dict, list)):
            return httpx.Response(status, json=body, headers=headers)
        return httpx.Response(status, content=(body or "").encode(), headers=headers)

    return handler


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": "order 9 not found"}, "order 9 not found"),
        ({"error": "invalid_token", "error_description": "expired"}, "invalid_token: expired"),
        ({"error": {"message": "nested message", "code": 12}}, "nested message"),
        ({"detail": "Not allowed here"}, "Not allowed here"),
        (
            {"errors": [{"status": "422", "title": "Validation", "detail": "email is blank"}]},
            "Validation: email is blank",
        ),
        ({"errors": ["plain string error"]}, "plain string error"),
        ("<html>teapot</html>", "Unprocessable Entity"),
    ],
)
async def test_error_messages_come_from_the_body(body, message):
    async with client(error(422, body), retry=NO_RETRY) as api:
        with pytest.raises(RequestRejectedError) as caught:
            await api.get("/orders/9")
    assert caught.value.message == message
    assert caught.value.status_code == 422


async def test_error_context_request_id_url_excerpt():
    handler = error(401, {"message": "bad credentials"}, headers={"X-Request-ID": "req_abc123"})
    async with client(handler) as api:
        with pytest.raises(AuthError) as caught:
            await api.get("/me", params={"fields": "all"})
    err = caught.value
    assert err.request_id == "req_abc123"
    assert err.method == "GET"
    assert err.url == "https://api.test/v1/me?fields=all"
    assert err.body_excerpt == '{"message":"bad credentials"}'
    assert str(err) == (
        "[req_abc123] GET https://api.test/v1/me?fields=all -> 401 (1 attempt): bad credentials"
    )
    assert "req_abc123" in repr(err)


async def test_body_excerpt_is_short_and_on_one_line():
    async with client(error(500, "line\n" * 500), retry=NO_RETRY) as api:
        with pytest.raises(ServerError) as caught:
            await api.get("/x")
    excerpt = caught.value.body_excerpt
    assert excerpt is not None and len(excerpt) <= 300 and "\n" not in excerpt


async def test_raise_for_status_false_returns_the_response():
    async with client(error(404, {"message": "nope"})) as api:
        response = await api.get("/x", raise_for_status=False)
    assert response.status_code == 404


async def test_rate_limited_error_carries_retry_after():
    handler = error(429, {"message": "slow down"}, headers={"Retry-After": "120"})
    async with client(handler) as api:
        with pytest.raises(RateLimitedError) as caught:
            await api.get("/x")
    assert caught.value.retry_after == 120.0
    assert caught.value.retryable


async def test_get_json_rejects_a_body_that_is_not_json():
    async with client(lambda r: httpx.Response(200, content=b"<html>")) as api:
        with pytest.raises(ApiError, match="not JSON"):
            await api.get_json("/x")


async def test_closed_client_refuses_requests():
    api = client()
    await api.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await api.get("/x")


async def test_per_request_timeout_reaches_the_transport():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["timeout"] = request.extensions["timeout"]
        return httpx.Response(200)

    async with client(handler, timeout=httpx.Timeout(3.0)) as api:
        await api.get("/x")
        assert seen["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}
        await api.get("/x", timeout=1.5)
        assert seen["timeout"]["read"] == 1.5


def test_repr_hides_userinfo_password():
    api = ApiClient("https://user:hunter22@api.test/", transport=httpx.MockTransport(echo))
    assert "hunter22" not in repr(api)
