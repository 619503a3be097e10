"""OAuth2 auth flows: client credentials, and stored tokens refreshed with a refresh token."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import httpx
import pytest

from interlink.config import InterlinkConfig
from interlink.errors import AuthError, OAuthError
from interlink.http import (
    ApiClient,
    ClientCredentialsAuth,
    MemoryTokenSource,
    OAuth2TokenAuth,
    RetryPolicy,
    TokenEndpoint,
    client_from_config,
)
from interlink.types import OAuthToken

BASE_URL = "https://api.example.com/v1"
TOKEN_URL = "https://auth.example.com/oauth/token"
START = 1_800_000_000.0


class FakeWall:
    """An epoch clock that only moves when the test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeOAuthApi:
    """An API behind an OAuth2 token endpoint, as one `httpx.MockTransport` handler.

    The token endpoint (`TOKEN_URL`) issues `access-N` (and `refresh-N` when `rotate`),
    or the next reply queued in `token_replies`. The API answers 200 to a bearer token in
    `accepted` (by default every token issued so far that was not `revoke`d) and 401 to
    anything else. `token_delay` makes the token endpoint slow, so that concurrent
    requests overlap while a fetch is in flight.
    """

    def __init__(
        self,
        *,
        expires_in: Any = 3600,
        token_type: str = "Bearer",
        rotate: bool = True,
        token_delay: float = 0.0,
    ) -> None:
        self.expires_in = expires_in
        self.token_type = token_type
        self.rotate = rotate
        self.token_delay = token_delay
        self.token_replies: list[httpx.Response] = []
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        # Headers are read when the request arrives: a replay is the same request object
        # with its Authorization header changed.
        self.api_tokens: list[str] = []
        self.api_bodies: list[bytes] = []
        self.accepted: set[str] = set()
        self.issued = 0
        self.on_api_request: Callable[[httpx.Request], None] | None = None

    def revoke_all(self) -> None:
        self.accepted.clear()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.token_requests.append(request)
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            if self.token_replies:
                return self.token_replies.pop(0)
            self.issued += 1
            body: dict[str, Any] = {
                "access_token": f"access-{self.issued}",
                "token_type": self.token_type,
            }
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            if self.rotate:
                body["refresh_token"] = f"refresh-{self.issued}"
            self.accepted.add(f"access-{self.issued}")
            return httpx.Response(200, json=body)
        self.api_requests.append(request)
        self.api_tokens.append(request.headers.get("authorization", ""))
        self.api_bodies.append(request.content)
        if self.on_api_request is not None:
            self.on_api_request(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and token in self.accepted:
            return httpx.Response(200, json={"token": token})
        return httpx.Response(401, json={"error": "invalid_token"})


@pytest.fixture
def wall() -> FakeWall:
    return FakeWall()


@pytest.fixture
def client_factory() -> Callable[..., ApiClient]:
    """Build an ApiClient over a MockTransport; retries never sleep."""

    def make(handler: Any, auth: Any, **kwargs: Any) -> ApiClient:
        kwargs.setdefault("retry", RetryPolicy(max_attempts=3, jitter=lambda ceiling: 0.0))
        return ApiClient(BASE_URL, auth=auth, transport=httpx.MockTransport(handler), **kwargs)

    return make


@pytest.fixture
def endpoint_factory(wall: FakeWall) -> Callable[..., TokenEndpoint]:
    def make(
        client_id: str = "client-1",
        client_secret: str | None = "secret-0123456789",
        **kwargs: Any,
    ) -> TokenEndpoint:
        return TokenEndpoint(TOKEN_URL, client_id, client_secret, wall=wall, **kwargs)

    return make


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)


def single_form(request: httpx.Request) -> dict[str, str]:
    parsed = form(request)
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}


# -- client credentials: the token request ------------------------------------------------------


async def test_client_secret_basic_form_encodes_id_and_secret(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    client_id, secret = "my client:id", "s3cr3t/+&=:%é ~"
    auth = ClientCredentialsAuth(endpoint_factory(client_id, secret))
    async with client_factory(api, auth) as client:
        await client.get("/items")
    (request,) = api.token_requests
    scheme, _, encoded = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    user, colon, password = base64.b64decode(encoded, validate=True).decode("ascii").partition(":")
    assert colon == ":"
    # RFC 6749 s. 2.3.1: each part is application/x-www-form-urlencoded before base64, so
    # the ':' inside the client id cannot be mistaken for the separator.
    assert ":" not in user
    assert ":" not in password
    assert (unquote_plus(user), unquote_plus(password)) == (client_id, secret)
    body = single_form(request)
    assert "client_id" not in body
    assert "client_secret" not in body


async def test_client_secret_post_sends_credentials_in_the_body(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    client_id, secret = "my client:id", "s3cr3t/+&=:%é ~"
    auth = ClientCredentialsAuth(
        endpoint_factory(client_id, secret, auth_method="client_secret_post")
    )
    async with client_factory(api, auth) as client:
        await client.get("/items")
    (request,) = api.token_requests
    assert "authorization" not in request.headers
    body = single_form(request)
    assert body == {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
    }


async def test_token_request_is_a_form_post_with_the_client_credentials_grant(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        await client.get("/items")
    (request,) = api.token_requests
    assert request.method == "POST"
    assert str(request.url) == TOKEN_URL
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert single_form(request) == {"grant_type": "client_credentials"}


async def test_scope_audience_and_extra_params_are_sent(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    auth = ClientCredentialsAuth(
        endpoint_factory(),
        scope="orders:read orders:write",
        audience="https://api.example.com/",
        extra_params={"resource": "urn:orders", "tenant": "t-1"},
    )
    async with client_factory(api, auth) as client:
        await client.get("/items")
    assert single_form(api.token_requests[0]) == {
        "grant_type": "client_credentials",
        "scope": "orders:read orders:write",
        "audience": "https://api.example.com/",
        "resource": "urn:orders",
        "tenant": "t-1",
    }


async def test_no_scope_or_audience_sends_neither(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    auth = ClientCredentialsAuth(endpoint_factory(), scope=None, audience=None, extra_params={})
    async with client_factory(api, auth) as client:
        await client.get("/items")
    body = single_form(api.token_requests[0])
    assert body["grant_type"] == "client_credentials"
    assert "scope" not in body
    assert "audience" not in body


# -- client credentials: caching and single flight ----------------------------------------------


async def test_token_is_cached_until_shortly_before_expiry(
    client_factory: Callable[..., ApiClient],
    endpoint_factory: Callable[..., TokenEndpoint],
    wall: FakeWall,
) -> None:
    api = FakeOAuthApi(expires_in=3600)
    auth = ClientCredentialsAuth(endpoint_factory())
    async with client_factory(api, auth) as client:
        for _ in range(5):
            await client.get("/items")
        assert len(api.token_requests) == 1

        # Renewal happens 30 s before the announced expiry: 3569 s in, still fresh.
        wall.advance(3569)
        for _ in range(5):
            await client.get("/items")
        assert len(api.token_requests) == 1

        wall.advance(2)  # 3571 s: inside the margin.
        for _ in range(5):
            await client.get("/items")
        assert len(api.token_requests) == 2
    assert auth.fetches == 2
    assert api.api_tokens == ["Bearer access-1"] * 10 + ["Bearer access-2"] * 5


async def test_expires_in_as_a_string_is_understood(
    client_factory: Callable[..., ApiClient],
    endpoint_factory: Callable[..., TokenEndpoint],
    wall: FakeWall,
) -> None:
    api = FakeOAuthApi(expires_in="120")
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        await client.get("/items")
        wall.advance(89)
        await client.get("/items")
        assert len(api.token_requests) == 1
        wall.advance(2)
        await client.get("/items")
        assert len(api.token_requests) == 2


async def test_token_without_expires_in_is_kept(
    client_factory: Callable[..., ApiClient],
    endpoint_factory: Callable[..., TokenEndpoint],
    wall: FakeWall,
) -> None:
    api = FakeOAuthApi(expires_in=None)
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        await client.get("/items")
        wall.advance(10 * 365 * 86400)
        await client.get("/items")
    assert len(api.token_requests) == 1


async def test_concurrent_requests_share_one_token_fetch(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi(token_delay=0.01)
    auth = ClientCredentialsAuth(endpoint_factory())
    async with client_factory(api, auth) as client:
        responses = await asyncio.gather(*(client.get(f"/items/{i}") for i in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert len(api.token_requests) == 1
    assert auth.fetches == 1
    assert api.api_tokens == ["Bearer access-1"] * 20


async def test_concurrent_requests_share_one_renewal_at_expiry(
    client_factory: Callable[..., ApiClient],
    endpoint_factory: Callable[..., TokenEndpoint],
    wall: FakeWall,
) -> None:
    api = FakeOAuthApi(token_delay=0.01)
    auth = ClientCredentialsAuth(endpoint_factory())
    async with client_factory(api, auth) as client:
        await client.get("/items")
        wall.advance(3600)
        await asyncio.gather(*(client.get(f"/items/{i}") for i in range(20)))
    assert len(api.token_requests) == 2
    assert api.api_tokens[1:] == ["Bearer access-2"] * 20


# -- client credentials: 401 and token endpoint failures ----------------------------------------


async def test_401_with_a_cached_token_fetches_once_and_replays(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    auth = ClientCredentialsAuth(endpoint_factory())
    async with client_factory(api, auth) as client:
        await client.get("/items")
        api.revoke_all()  # The server forgets the token before it expires.
        response = await client.post("/items", json={"name": "x"})
    assert response.status_code == 200
    assert len(api.token_requests) == 2
    assert [r.method for r in api.api_requests] == ["GET", "POST", "POST"]
    assert api.api_tokens == ["Bearer access-1", "Bearer access-1", "Bearer access-2"]
    # The replay is the same request, body included.
    assert api.api_bodies[1:] == [b'{"name":"x"}'] * 2


async def test_second_401_after_refetch_raises_auth_error(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    auth = ClientCredentialsAuth(endpoint_factory())
    async with client_factory(api, auth) as client:
        await client.get("/items")
        api.accepted = set()
        api.token_replies.append(httpx.Response(200, json={"access_token": "access-useless"}))
        with pytest.raises(AuthError) as caught:
            await client.get("/items")
    assert caught.value.status_code == 401
    assert caught.value.method == "GET"
    assert len(api.token_requests) == 2  # One initial fetch, one re-fetch, no loop.
    assert api.api_tokens == ["Bearer access-1", "Bearer access-1", "Bearer access-useless"]


async def test_concurrent_401s_share_one_refetch(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi(token_delay=0.01)
    auth = ClientCredentialsAuth(endpoint_factory())
    async with client_factory(api, auth) as client:
        await client.get("/items")
        api.revoke_all()
        responses = await asyncio.gather(*(client.get(f"/items/{i}") for i in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert len(api.token_requests) == 2
    assert api.api_tokens.count("Bearer access-2") == 10


async def test_token_endpoint_error_raises_oauth_error(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.append(
        httpx.Response(400, json={"error": "invalid_client", "error_description": "bad secret"})
    )
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        with pytest.raises(OAuthError) as caught:
            await client.get("/items")
    error = caught.value
    assert error.error == "invalid_client"
    assert error.description == "bad secret"
    assert error.status_code == 400
    assert error.token_url == TOKEN_URL
    assert "invalid_client: bad secret" in str(error)
    assert "(HTTP 400)" in str(error)
    assert len(api.token_requests) == 1  # 400 is not worth a retry.
    assert api.api_requests == []


async def test_token_endpoint_error_without_json_is_invalid_response(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.append(httpx.Response(403, text="<html>denied</html>"))
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        with pytest.raises(OAuthError) as caught:
            await client.get("/items")
    assert caught.value.error == "invalid_response"
    assert caught.value.status_code == 403
    assert api.api_requests == []


async def test_token_endpoint_503_is_retried(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.append(httpx.Response(503, json={"error": "temporarily_unavailable"}))
    auth = ClientCredentialsAuth(endpoint_factory())
    async with client_factory(api, auth) as client:
        response = await client.get("/items")
        stats = client.stats
    assert response.status_code == 200
    assert len(api.token_requests) == 2
    assert auth.fetches == 1
    assert api.api_tokens == ["Bearer access-1"]
    assert stats.retries == 1


async def test_token_endpoint_503_until_attempts_run_out_is_an_oauth_error(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.extend(httpx.Response(503) for _ in range(3))
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        with pytest.raises(OAuthError) as caught:
            await client.get("/items")
    assert caught.value.status_code == 503
    assert len(api.token_requests) == 3
    assert api.api_requests == []


async def test_token_response_without_access_token_is_an_oauth_error(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.append(httpx.Response(200, json={"token_type": "bearer", "expires_in": 60}))
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        with pytest.raises(OAuthError) as caught:
            await client.get("/items")
    assert caught.value.error == "invalid_response"
    assert "access_token" in str(caught.value)
    assert api.api_requests == []


async def test_a_failed_fetch_is_not_cached(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.append(httpx.Response(400, json={"error": "invalid_scope"}))
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        with pytest.raises(OAuthError):
            await client.get("/items")
        response = await client.get("/items")
    assert response.status_code == 200
    assert len(api.token_requests) == 2


async def test_lower_case_bearer_token_type_is_sent_as_bearer(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi(token_type="bearer")
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        await client.get("/items")
    assert api.api_tokens == ["Bearer access-1"]


async def test_missing_token_type_defaults_to_bearer(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.append(httpx.Response(200, json={"access_token": "access-1"}))
    api.accepted.add("access-1")
    async with client_factory(api, ClientCredentialsAuth(endpoint_factory())) as client:
        await client.get("/items")
    assert api.api_tokens == ["Bearer access-1"]


def test_client_credentials_auth_refuses_sync_use(
    endpoint_factory: Callable[..., TokenEndpoint],
) -> None:
    auth = ClientCredentialsAuth(endpoint_factory())
    with pytest.raises(RuntimeError, match="async"):
        auth.sync_auth_flow(httpx.Request("GET", BASE_URL))


# -- authorization code: OAuth2TokenAuth with a TokenSource -------------------------------------


def expired(access: str = "access-0", refresh: str | None = "refresh-0") -> OAuthToken:
    return OAuthToken(access_token=access, refresh_token=refresh, expires_at=START - 1)


def fresh(access: str = "access-0", refresh: str | None = "refresh-0") -> OAuthToken:
    return OAuthToken(access_token=access, refresh_token=refresh, expires_at=START + 3600)


async def test_no_stored_token_is_not_connected(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    auth = OAuth2TokenAuth(MemoryTokenSource(), endpoint_factory(), name="crm")
    async with client_factory(api, auth) as client:
        with pytest.raises(OAuthError) as caught:
            await client.get("/items")
    assert caught.value.error == "not_connected"
    assert "interlink connect crm" in str(caught.value)
    assert api.token_requests == []
    assert api.api_requests == []


async def test_fresh_token_is_used_without_refresh(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.accepted.add("access-0")
    source = MemoryTokenSource(fresh())
    auth = OAuth2TokenAuth(source, endpoint_factory())
    async with client_factory(api, auth) as client:
        for _ in range(3):
            await client.get("/items")
    assert api.token_requests == []
    assert api.api_tokens == ["Bearer access-0"] * 3
    assert source.saves == 0
    assert auth.refreshes == 0


async def test_expired_token_is_refreshed_before_the_request(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    source = MemoryTokenSource(expired())
    auth = OAuth2TokenAuth(source, endpoint_factory())
    async with client_factory(api, auth) as client:
        response = await client.get("/items")
    assert response.status_code == 200
    (refresh,) = api.token_requests
    assert single_form(refresh) == {"grant_type": "refresh_token", "refresh_token": "refresh-0"}
    assert refresh.headers["Authorization"].startswith("Basic ")
    assert api.api_tokens == ["Bearer access-1"]
    assert auth.refreshes == 1
    assert source.saves == 1
    assert source.token is not None
    assert source.token.expires_at == START + 3600


async def test_token_about_to_expire_is_refreshed(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    token = OAuthToken(access_token="access-0", refresh_token="refresh-0", expires_at=START + 29)
    source = MemoryTokenSource(token)
    async with client_factory(api, OAuth2TokenAuth(source, endpoint_factory())) as client:
        await client.get("/items")
    assert len(api.token_requests) == 1
    assert api.api_tokens == ["Bearer access-1"]


async def test_rotated_refresh_token_is_saved_before_the_request(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi(rotate=True)
    source = MemoryTokenSource(expired())
    seen: list[OAuthToken | None] = []

    def check_saved(request: httpx.Request) -> None:
        seen.append(source.token)
        assert source.token is not None
        assert source.token.refresh_token == "refresh-1"
        assert request.headers["Authorization"] == f"Bearer {source.token.access_token}"

    api.on_api_request = check_saved
    async with client_factory(api, OAuth2TokenAuth(source, endpoint_factory())) as client:
        await client.get("/items")
    assert len(seen) == 1
    assert source.saves == 1


async def test_refresh_answer_without_refresh_token_keeps_the_old_one(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi(rotate=False)
    source = MemoryTokenSource(expired())
    async with client_factory(api, OAuth2TokenAuth(source, endpoint_factory())) as client:
        await client.get("/items")
    assert source.token is not None
    assert source.token.access_token == "access-1"
    assert source.token.refresh_token == "refresh-0"


async def test_concurrent_requests_with_an_expired_token_refresh_once(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi(token_delay=0.01)
    source = MemoryTokenSource(expired())
    auth = OAuth2TokenAuth(source, endpoint_factory())
    async with client_factory(api, auth) as client:
        responses = await asyncio.gather(*(client.get(f"/items/{i}") for i in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert len(api.token_requests) == 1
    assert auth.refreshes == 1
    assert source.saves == 1
    assert api.api_tokens == ["Bearer access-1"] * 10


async def test_401_refreshes_once_and_replays(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    # No expiry is known, so only the server's 401 says the token is dead.
    source = MemoryTokenSource(OAuthToken(access_token="access-0", refresh_token="refresh-0"))
    auth = OAuth2TokenAuth(source, endpoint_factory())
    async with client_factory(api, auth) as client:
        response = await client.put("/items/1", json={"a": 1})
    assert response.status_code == 200
    assert api.api_tokens == ["Bearer access-0", "Bearer access-1"]
    assert api.api_bodies == [b'{"a":1}'] * 2
    assert single_form(api.token_requests[0])["refresh_token"] == "refresh-0"
    assert auth.refreshes == 1
    assert source.token is not None
    assert source.token.refresh_token == "refresh-1"


async def test_second_401_after_refresh_raises_auth_error(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.append(
        httpx.Response(200, json={"access_token": "access-useless", "refresh_token": "r-2"})
    )
    source = MemoryTokenSource(OAuthToken(access_token="access-0", refresh_token="refresh-0"))
    auth = OAuth2TokenAuth(source, endpoint_factory())
    async with client_factory(api, auth) as client:
        with pytest.raises(AuthError) as caught:
            await client.get("/items")
    assert caught.value.status_code == 401
    assert len(api.token_requests) == 1
    assert api.api_tokens == ["Bearer access-0", "Bearer access-useless"]


async def test_401_without_refresh_token_raises_at_once(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    source = MemoryTokenSource(OAuthToken(access_token="access-0", refresh_token=None))
    async with client_factory(api, OAuth2TokenAuth(source, endpoint_factory())) as client:
        with pytest.raises(AuthError):
            await client.get("/items")
    assert api.token_requests == []
    assert len(api.api_requests) == 1


async def test_expired_token_without_refresh_token_is_an_oauth_error(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    source = MemoryTokenSource(expired(refresh=None))
    async with client_factory(api, OAuth2TokenAuth(source, endpoint_factory())) as client:
        with pytest.raises(OAuthError) as caught:
            await client.get("/items")
    assert caught.value.error == "no_refresh_token"
    assert api.token_requests == []
    assert api.api_requests == []


async def test_invalid_grant_on_refresh_is_an_oauth_error(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    api.token_replies.append(
        httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "refresh token revoked"}
        )
    )
    source = MemoryTokenSource(expired())
    async with client_factory(api, OAuth2TokenAuth(source, endpoint_factory())) as client:
        with pytest.raises(OAuthError) as caught:
            await client.get("/items")
    assert caught.value.error == "invalid_grant"
    assert caught.value.description == "refresh token revoked"
    assert caught.value.status_code == 400
    assert api.api_requests == []
    assert source.saves == 0
    assert source.token == expired()


async def test_token_refreshed_elsewhere_is_picked_up_from_the_source(
    client_factory: Callable[..., ApiClient],
    endpoint_factory: Callable[..., TokenEndpoint],
    wall: FakeWall,
) -> None:
    """Another process refreshed and saved the token: use it instead of refreshing again."""
    api = FakeOAuthApi()
    api.accepted.update({"access-0", "access-other"})
    source = MemoryTokenSource(fresh())
    auth = OAuth2TokenAuth(source, endpoint_factory())
    async with client_factory(api, auth) as client:
        await client.get("/items")
        wall.advance(3600)
        source.token = OAuthToken(
            access_token="access-other", refresh_token="refresh-other", expires_at=wall() + 3600
        )
        await client.get("/items")
    assert api.token_requests == []
    assert api.api_tokens == ["Bearer access-0", "Bearer access-other"]


async def test_refresh_with_client_secret_post(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    endpoint = endpoint_factory(auth_method="client_secret_post")
    source = MemoryTokenSource(expired())
    async with client_factory(api, OAuth2TokenAuth(source, endpoint)) as client:
        await client.get("/items")
    request = api.token_requests[0]
    assert "authorization" not in request.headers
    assert single_form(request) == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-0",
        "client_id": "client-1",
        "client_secret": "secret-0123456789",
    }


async def test_public_client_refresh_sends_client_id_only(
    client_factory: Callable[..., ApiClient], endpoint_factory: Callable[..., TokenEndpoint]
) -> None:
    api = FakeOAuthApi()
    endpoint = endpoint_factory(client_secret=None)
    source = MemoryTokenSource(expired())
    async with client_factory(api, OAuth2TokenAuth(source, endpoint)) as client:
        await client.get("/items")
    request = api.token_requests[0]
    assert "authorization" not in request.headers
    assert single_form(request) == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-0",
        "client_id": "client-1",
    }


def test_oauth2_token_auth_refuses_sync_use(endpoint_factory: Callable[..., TokenEndpoint]) -> None:
    auth = OAuth2TokenAuth(MemoryTokenSource(fresh()), endpoint_factory())
    with pytest.raises(RuntimeError, match="async"):
        auth.sync_auth_flow(httpx.Request("GET", BASE_URL))


async def test_config_seeded_refresh_token_refreshes_on_first_request() -> None:
    api = FakeOAuthApi()
    config = InterlinkConfig.model_validate(
        {
            "connections": {
                "crm": {
                    "base_url": BASE_URL,
                    "auth": {
                        "type": "oauth2",
                        "token_url": TOKEN_URL,
                        "client_id": "client-1",
                        "client_secret": "secret-0123456789",
                        "refresh_token": "seed-refresh-0123456789",
                    },
                }
            }
        }
    )
    connection = config.connections["crm"]
    async with client_from_config(
        "oauth2-seeded-crm", connection, transport=httpx.MockTransport(api)
    ) as client:
        response = await client.get("/items")
        response2 = await client.get("/items")
        auth = client.auth
    assert (response.status_code, response2.status_code) == (200, 200)
    (refresh,) = api.token_requests
    assert single_form(refresh) == {
        "grant_type": "refresh_token",
        "refresh_token": "seed-refresh-0123456789",
    }
    assert api.api_tokens == ["Bearer access-1"] * 2
    assert isinstance(auth, OAuth2TokenAuth)
    assert isinstance(auth.source, MemoryTokenSource)
    assert auth.source.token is not None
    assert auth.source.token.refresh_token == "refresh-1"
