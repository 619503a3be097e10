"""Static credentials (API key, bearer, basic) and the auth built from `interlink.yaml`."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import httpx
import pytest

from interlink.config import (
    ApiKeyAuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    ConnectionConfig,
    InterlinkConfig,
    NoAuthConfig,
    OAuth2AuthConfig,
    OAuth2ClientCredentialsConfig,
)
from interlink.http import (
    ApiClient,
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    ClientCredentialsAuth,
    MemoryTokenSource,
    OAuth2TokenAuth,
    Redactor,
    RetryPolicy,
    TokenEndpoint,
    build_auth,
    client_from_config,
)
from interlink.types import OAuthToken

BASE_URL = "https://api.example.com/v1"


class Recorder:
    """A fake API that answers 200 with a small JSON body and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"ok": True})

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


class TokenApi:
    """A fake API with an OAuth2 token endpoint at `/oauth/token`.

    The endpoint issues `issued-access-N` / `issued-refresh-N`; every other path answers
    200 to `Bearer <latest access token>` and 401 to anything else.
    """

    def __init__(self) -> None:
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        self.issued = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            self.token_requests.append(request)
            self.issued += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"issued-access-{self.issued}",
                    "refresh_token": f"issued-refresh-{self.issued}",
                    "token_type": "bearer",
                    "expires_in": 3600,
                },
            )
        self.api_requests.append(request)
        if request.headers.get("authorization") == f"Bearer issued-access-{self.issued}":
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(401, json={"error": "invalid_token"})


@pytest.fixture
def client_factory() -> Callable[..., ApiClient]:
    """Build an ApiClient whose transport is `httpx.MockTransport(handler)`."""

    def make(handler: Callable[[httpx.Request], Any], **kwargs: Any) -> ApiClient:
        return ApiClient(BASE_URL, transport=httpx.MockTransport(handler), **kwargs)

    return make


def connection(auth: dict[str, Any], **extra: Any) -> ConnectionConfig:
    """One connection parsed the way `interlink.yaml` is."""
    config = InterlinkConfig.model_validate(
        {"connections": {"svc": {"base_url": BASE_URL, "auth": auth, **extra}}}
    )
    return config.connections["svc"]


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode(), strict_parsing=True).items()}


def basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    return user, password


# -- ApiKeyAuth ---------------------------------------------------------------------------------


async def test_api_key_goes_in_the_x_api_key_header_by_default(
    client_factory: Callable[..., ApiClient],
) -> None:
    api = Recorder()
    async with client_factory(api, auth=ApiKeyAuth("key-0123456789")) as client:
        await client.get("/items")
    assert api.last.headers["X-API-Key"] == "key-0123456789"
    assert "key-0123456789" not in str(api.last.url)
    assert "authorization" not in api.last.headers


async def test_api_key_header_name_can_be_chosen(client_factory: Callable[..., ApiClient]) -> None:
    api = Recorder()
    auth = ApiKeyAuth("key-0123456789", name="X-Shop-Token")
    async with client_factory(api, auth=auth) as client:
        await client.get("/items")
    assert api.last.headers["X-Shop-Token"] == "key-0123456789"
    assert "X-API-Key" not in api.last.headers


async def test_api_key_is_sent_on_every_request(client_factory: Callable[..., ApiClient]) -> None:
    api = Recorder()
    async with client_factory(api, auth=ApiKeyAuth("key-0123456789")) as client:
        for _ in range(3):
            await client.get("/items")
        await client.post("/items", json={"a": 1})
    assert [r.headers["X-API-Key"] for r in api.requests] == ["key-0123456789"] * 4


async def test_api_key_in_query_is_the_only_parameter(
    client_factory: Callable[..., ApiClient],
) -> None:
    api = Recorder()
    auth = ApiKeyAuth("key-0123456789", name="api_key", location="query")
    async with client_factory(api, auth=auth) as client:
        await client.get("/items")
    assert api.last.url.path == "/v1/items"
    assert api.last.url.params.multi_items() == [("api_key", "key-0123456789")]
    assert "X-API-Key" not in api.last.headers


async def test_api_key_in_query_is_merged_with_existing_params(
    client_factory: Callable[..., ApiClient],
) -> None:
    api = Recorder()
    auth = ApiKeyAuth("key-0123456789", name="api_key", location="query")
    async with client_factory(api, auth=auth, params={"locale": "de"}) as client:
        await client.get("/items?page=2&tag=a&tag=b", params={"limit": 10, "active": True})
    assert api.last.url.params.multi_items() == [
        ("page", "2"),
        ("tag", "a"),
        ("tag", "b"),
        ("locale", "de"),
        ("limit", "10"),
        ("active", "true"),
        ("api_key", "key-0123456789"),
    ]


async def test_api_key_in_query_is_percent_encoded(
    client_factory: Callable[..., ApiClient],
) -> None:
    api = Recorder()
    key = "a+b/c=d&e f?g#h"
    auth = ApiKeyAuth(key, name="key", location="query")
    async with client_factory(api, auth=auth) as client:
        await client.get("/items", params={"q": "x"})
    assert api.last.url.params["key"] == key
    assert api.last.url.params["q"] == "x"
    assert api.last.url.fragment == ""


async def test_api_key_in_query_does_not_pile_up_on_retries(
    client_factory: Callable[..., ApiClient],
) -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        assert request.url.params.get_list("api_key") == ["key-0123456789"]
        return httpx.Response(503 if calls == 1 else 200)

    auth = ApiKeyAuth("key-0123456789", name="api_key", location="query")
    retry = RetryPolicy(max_attempts=3, jitter=lambda ceiling: 0.0)
    async with client_factory(flaky, auth=auth, retry=retry) as client:
        response = await client.get("/items")
    assert response.status_code == 200
    assert calls == 2


async def test_api_key_in_query_after_an_empty_query(
    client_factory: Callable[..., ApiClient],
) -> None:
    """A URL that ends in '?' once sent the parameter as '?api_key' ('??api_key=...')."""
    api = Recorder()
    auth = ApiKeyAuth("key-0123456789", name="api_key", location="query")
    async with client_factory(api, auth=auth) as client:
        await client.get("/items?")
    assert api.last.url.params.get("api_key") == "key-0123456789"


async def test_api_key_in_query_with_a_fragment(client_factory: Callable[..., ApiClient]) -> None:
    """The key once went after the '#', into the fragment, which is never sent."""
    api = Recorder()
    auth = ApiKeyAuth("key-0123456789", name="api_key", location="query")
    async with client_factory(api, auth=auth) as client:
        await client.get("/items#top")
    assert api.last.url.params.get("api_key") == "key-0123456789"


# -- BearerAuth and BasicAuth -------------------------------------------------------------------


async def test_bearer_token_goes_in_the_authorization_header(
    client_factory: Callable[..., ApiClient],
) -> None:
    api = Recorder()
    async with client_factory(api, auth=BearerAuth("tok-0123456789")) as client:
        await client.get("/items")
        await client.delete("/items/1")
    assert [r.headers["Authorization"] for r in api.requests] == ["Bearer tok-0123456789"] * 2


async def test_bearer_auth_replaces_an_authorization_header_given_per_request(
    client_factory: Callable[..., ApiClient],
) -> None:
    api = Recorder()
    async with client_factory(api, auth=BearerAuth("tok-0123456789")) as client:
        await client.get("/items", headers={"Authorization": "Bearer other"})
    assert api.last.headers.get_list("authorization") == ["Bearer tok-0123456789"]


async def test_basic_auth_is_base64_of_user_colon_password(
    client_factory: Callable[..., ApiClient],
) -> None:
    api = Recorder()
    async with client_factory(api, auth=BasicAuth("alice", "open sesame")) as client:
        await client.get("/items")
    # RFC 7617 s. 2: the example credentials of the RFC itself.
    expected = "Basic " + base64.b64encode(b"alice:open sesame").decode()
    assert api.last.headers["Authorization"] == expected
    assert BasicAuth("Aladdin", "open sesame")._header == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


async def test_basic_auth_encodes_credentials_as_utf8(
    client_factory: Callable[..., ApiClient],
) -> None:
    api = Recorder()
    user, password = "jürgen", "pässwörd:with:colons €"
    async with client_factory(api, auth=BasicAuth(user, password)) as client:
        await client.get("/items")
    header = api.last.headers["Authorization"]
    # RFC 7617 s. 2.1: charset="UTF-8".
    assert header == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    assert basic_credentials(header) == (user, password)


# -- reprs --------------------------------------------------------------------------------------


def test_reprs_never_show_secrets() -> None:
    endpoint = TokenEndpoint(
        "https://auth.example.com/token", "client-id-1", "client-secret-0123456789"
    )
    token = OAuthToken(
        access_token="access-0123456789", refresh_token="refresh-0123456789", expires_at=1.0
    )
    objects = [
        ApiKeyAuth("key-0123456789"),
        ApiKeyAuth("key-0123456789", name="api_key", location="query"),
        BearerAuth("tok-0123456789"),
        BasicAuth("alice", "pass-0123456789"),
        endpoint,
        ClientCredentialsAuth(endpoint, scope="read"),
        OAuth2TokenAuth(MemoryTokenSource(token), endpoint, name="svc"),
        token,
        MemoryTokenSource(token),
    ]
    secrets = [
        "key-0123456789",
        "tok-0123456789",
        "pass-0123456789",
        "client-secret-0123456789",
        "access-0123456789",
        "refresh-0123456789",
        base64.b64encode(b"alice:pass-0123456789").decode(),
    ]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            for secret in secrets:
                assert secret not in text, f"{secret!r} in {text!r}"
    assert (
        repr(BasicAuth("alice", "pass-0123456789")) == "BasicAuth(username='alice', password='***')"
    )
    assert "key='***'" in repr(ApiKeyAuth("key-0123456789"))


def test_config_reprs_never_show_secrets() -> None:
    configs = [
        connection({"type": "api_key", "key": "key-0123456789"}),
        connection({"type": "bearer", "token": "tok-0123456789"}),
        connection({"type": "basic", "username": "alice", "password": "pass-0123456789"}),
        connection(
            {
                "type": "oauth2_client_credentials",
                "token_url": "/oauth/token",
                "client_id": "client-id-1",
                "client_secret": "client-secret-0123456789",
            }
        ),
        connection(
            {
                "type": "oauth2",
                "token_url": "/oauth/token",
                "client_id": "client-id-1",
                "client_secret": "client-secret-0123456789",
                "access_token": "access-0123456789",
                "refresh_token": "refresh-0123456789",
            }
        ),
    ]
    for config in configs:
        for text in (repr(config), str(config), repr(config.auth)):
            # Every secret above ends in the same digits; no other value has them.
            assert "0123456789" not in text, text


# -- build_auth ---------------------------------------------------------------------------------


def test_build_auth_none_is_no_auth() -> None:
    assert (
        build_auth("svc", NoAuthConfig(type="none"), base_url=BASE_URL, redactor=Redactor()) is None
    )


def test_build_auth_api_key_registers_the_key() -> None:
    redactor = Redactor()
    config = ApiKeyAuthConfig.model_validate(
        {"type": "api_key", "key": "key-0123456789", "name": "token", "in": "query"}
    )
    auth = build_auth("svc", config, base_url=BASE_URL, redactor=redactor)
    assert isinstance(auth, ApiKeyAuth)
    assert (auth.key, auth.name, auth.location) == ("key-0123456789", "token", "query")
    assert redactor.text("key is key-0123456789") == "key is ***"


def test_build_auth_bearer_and_basic_register_their_secrets() -> None:
    redactor = Redactor()
    bearer = build_auth(
        "svc",
        BearerAuthConfig(type="bearer", token="tok-0123456789"),
        base_url=BASE_URL,
        redactor=redactor,
    )
    basic = build_auth(
        "svc",
        BasicAuthConfig(type="basic", username="alice", password="pass-0123456789"),
        base_url=BASE_URL,
        redactor=redactor,
    )
    assert isinstance(bearer, BearerAuth)
    assert isinstance(basic, BasicAuth)
    assert redactor.text("tok-0123456789 pass-0123456789") == "*** ***"


def test_build_auth_client_credentials() -> None:
    redactor = Redactor()
    config = OAuth2ClientCredentialsConfig(
        type="oauth2_client_credentials",
        token_url="oauth/token",
        client_id="client-id-1",
        client_secret="client-secret-0123456789",
        auth_method="client_secret_post",
        scope="read write",
        audience="https://api.example.com",
        extra_params={"resource": "orders"},
    )
    auth = build_auth("svc", config, base_url=BASE_URL + "/", redactor=redactor)
    assert isinstance(auth, ClientCredentialsAuth)
    assert auth.endpoint.token_url == BASE_URL + "/oauth/token"
    assert auth.endpoint.client_id == "client-id-1"
    assert auth.endpoint.auth_method == "client_secret_post"
    assert auth.endpoint.redactor is redactor
    assert redactor.text("client-secret-0123456789") == "***"


def test_build_auth_keeps_an_absolute_token_url() -> None:
    config = OAuth2ClientCredentialsConfig(
        type="oauth2_client_credentials",
        token_url="https://auth.example.com/token",
        client_id="client-id-1",
        client_secret="client-secret-0123456789",
    )
    auth = build_auth("svc", config, base_url=BASE_URL, redactor=Redactor())
    assert isinstance(auth, ClientCredentialsAuth)
    assert auth.endpoint.token_url == "https://auth.example.com/token"


async def test_build_auth_oauth2_seeds_a_memory_token_source() -> None:
    redactor = Redactor()
    config = OAuth2AuthConfig(
        type="oauth2",
        token_url="https://auth.example.com/token",
        client_id="client-id-1",
        access_token="access-0123456789",
        refresh_token="refresh-0123456789",
    )
    auth = build_auth("svc", config, base_url=BASE_URL, redactor=redactor)
    assert isinstance(auth, OAuth2TokenAuth)
    assert auth.name == "svc"
    token = await auth.source.load()
    assert token is not None
    assert (token.access_token, token.refresh_token, token.expires_at) == (
        "access-0123456789",
        "refresh-0123456789",
        None,
    )


async def test_build_auth_oauth2_without_seed_or_source_is_not_connected() -> None:
    config = OAuth2AuthConfig(
        type="oauth2", token_url="https://auth.example.com/token", client_id="client-id-1"
    )
    auth = build_auth("svc", config, base_url=BASE_URL, redactor=Redactor())
    assert isinstance(auth, OAuth2TokenAuth)
    assert await auth.source.load() is None


async def test_build_auth_oauth2_prefers_the_given_token_source() -> None:
    source = MemoryTokenSource(OAuthToken(access_token="vault-access-0123456789"))
    config = OAuth2AuthConfig(
        type="oauth2",
        token_url="https://auth.example.com/token",
        client_id="client-id-1",
        access_token="config-access-0123456789",
    )
    auth = build_auth("svc", config, base_url=BASE_URL, redactor=Redactor(), token_source=source)
    assert isinstance(auth, OAuth2TokenAuth)
    assert auth.source is source


# -- client_from_config, end to end through a MockTransport -------------------------------------


async def test_config_api_key_header() -> None:
    api = Recorder()
    config = connection({"type": "api_key", "key": "key-0123456789"})
    async with client_from_config(
        "cfg-key-header", config, transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/items")
    assert api.last.headers["X-API-Key"] == "key-0123456789"
    assert str(api.last.url) == BASE_URL + "/items"


async def test_config_api_key_custom_header() -> None:
    api = Recorder()
    config = connection({"type": "api_key", "key": "key-0123456789", "name": "X-Token"})
    async with client_from_config(
        "cfg-key-custom", config, transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/items")
    assert api.last.headers["X-Token"] == "key-0123456789"


async def test_config_api_key_query_with_connection_params() -> None:
    api = Recorder()
    config = connection(
        {"type": "api_key", "key": "key-0123456789", "name": "appToken", "in": "query"},
        params={"format": "json"},
        headers={"X-Tenant": "t1"},
    )
    async with client_from_config(
        "cfg-key-query", config, transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/items?page=3", params={"limit": 5})
    assert api.last.url.params.multi_items() == [
        ("page", "3"),
        ("format", "json"),
        ("limit", "5"),
        ("appToken", "key-0123456789"),
    ]
    assert api.last.headers["X-Tenant"] == "t1"
    # The connection's own parameter name is treated as secret in URLs it redacts.
    assert "key-0123456789" not in client.redactor.url(str(api.last.url))
    assert client.redactor.url(str(api.last.url)).endswith("appToken=***")


async def test_config_bearer() -> None:
    api = Recorder()
    config = connection({"type": "bearer", "token": "tok-0123456789"})
    async with client_from_config(
        "cfg-bearer", config, transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/items")
    assert api.last.headers["Authorization"] == "Bearer tok-0123456789"


async def test_config_basic_utf8() -> None:
    api = Recorder()
    config = connection({"type": "basic", "username": "zoë", "password": "pä55:wörd"})
    async with client_from_config(
        "cfg-basic", config, transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/items")
    assert basic_credentials(api.last.headers["Authorization"]) == ("zoë", "pä55:wörd")


async def test_config_none_sends_no_credentials() -> None:
    api = Recorder()
    config = connection({"type": "none"})
    async with client_from_config("cfg-none", config, transport=httpx.MockTransport(api)) as client:
        await client.get("/items")
    assert "authorization" not in api.last.headers
    assert "x-api-key" not in api.last.headers
    assert api.last.url.params.multi_items() == []


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_config_oauth2_client_credentials(method: str) -> None:
    api = TokenApi()
    config = connection(
        {
            "type": "oauth2_client_credentials",
            "token_url": "oauth/token",
            "client_id": "client:id",
            "client_secret": "s3cret/+&= é",
            "auth_method": method,
            "scope": "read:orders",
            "audience": "orders-api",
            "extra_params": {"resource": "urn:orders"},
        }
    )
    async with client_from_config(
        f"cfg-cc-{method}", config, transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/items")
        await client.get("/items")
    assert len(api.token_requests) == 1
    token_request = api.token_requests[0]
    assert str(token_request.url) == BASE_URL + "/oauth/token"
    body = form(token_request)
    assert body["grant_type"] == "client_credentials"
    assert body["scope"] == "read:orders"
    assert body["audience"] == "orders-api"
    assert body["resource"] == "urn:orders"
    if method == "client_secret_basic":
        user, password = basic_credentials(token_request.headers["Authorization"])
        assert (unquote_plus(user), unquote_plus(password)) == ("client:id", "s3cret/+&= é")
        assert "client_secret" not in body
    else:
        assert "authorization" not in token_request.headers
        assert (body["client_id"], body["client_secret"]) == ("client:id", "s3cret/+&= é")
    assert [r.headers["Authorization"] for r in api.api_requests] == ["Bearer issued-access-1"] * 2


async def test_config_oauth2_seeded_access_token_is_used_as_is() -> None:
    api = Recorder()
    config = connection(
        {
            "type": "oauth2",
            "token_url": "/oauth/token",
            "client_id": "client-id-1",
            "access_token": "seed-access-0123456789",
            "refresh_token": "seed-refresh-0123456789",
        }
    )
    async with client_from_config(
        "cfg-oauth2", config, transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/items")
    assert [r.url.path for r in api.requests] == ["/v1/items"]
    assert api.last.headers["Authorization"] == "Bearer seed-access-0123456789"


async def test_config_oauth2_uses_the_token_source() -> None:
    api = TokenApi()
    api.issued = 7
    source = MemoryTokenSource(OAuthToken(access_token="issued-access-7", expires_at=None))
    config = connection({"type": "oauth2", "token_url": "/oauth/token", "client_id": "client-id-1"})
    async with client_from_config(
        "cfg-oauth2-source", config, transport=httpx.MockTransport(api), token_source=source
    ) as client:
        await client.get("/items")
    assert api.token_requests == []
    assert api.api_requests[0].headers["Authorization"] == "Bearer issued-access-7"


async def test_api_client_from_config_is_client_from_config() -> None:
    api = Recorder()
    config = connection({"type": "bearer", "token": "tok-0123456789"})
    async with ApiClient.from_config(
        "cfg-from-config", config, transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/items")
    assert client.name == "cfg-from-config"
    assert api.last.headers["Authorization"] == "Bearer tok-0123456789"
    assert "tok-0123456789" not in repr(client)


def test_token_url_forms_resolve_against_the_base_url() -> None:
    from interlink.http import endpoint_url as _absolute

    base = "https://api.example.com/v1"
    assert _absolute("oauth/token", base) == "https://api.example.com/v1/oauth/token"
    assert _absolute("/oauth/token", base) == "https://api.example.com/oauth/token"
    assert _absolute("https://auth.test/token", base) == "https://auth.test/token"
