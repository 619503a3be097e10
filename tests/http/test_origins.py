"""Credentials go only to the connection's own origin, and a query key is sent exactly once.

Issue 11: a next link on another host received the connection's `Authorization` header,
and an `in: query` API key was appended again to a URL that already carried it (and
stayed in the URLs shown in errors). The client now attaches credentials, the
connection's headers and its parameters only to requests for `base_url`'s origin (scheme,
host, port) or one of `allowed_origins`; everything it shows is the URL from before auth.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlink.config import ConnectionConfig
from interlink.errors import NotFoundError
from interlink.http import (
    ApiClient,
    ApiKeyAuth,
    BearerAuth,
    client_from_config,
    origin_of,
    url_before_auth,
)
from interlink.sandbox import SandboxServer

BASE_URL = "https://api.example.com/v1"
KEY = "key-SECRET-0123456789"
TOKEN = "token-SECRET-9876543210"
CLIENT_SECRET = "client-SECRET-abcdef"

AUTHS: dict[str, dict[str, Any]] = {
    "bearer": {"type": "bearer", "token": TOKEN},
    "basic": {"type": "basic", "username": "u", "password": KEY},
    "api_key_header": {"type": "api_key", "key": KEY},
    "api_key_query": {"type": "api_key", "key": KEY, "name": "api_key", "in": "query"},
    "client_credentials": {
        "type": "oauth2_client_credentials",
        "token_url": "oauth/token",
        "client_id": "cid",
        "client_secret": CLIENT_SECRET,
    },
}


class Recorder:
    """Answers 200 to everything (a token to token requests) and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(200, json={"access_token": TOKEN, "expires_in": 3600})
        if request.url.path.endswith("/missing"):
            return httpx.Response(404, json={"message": "no such thing"})
        return httpx.Response(200, json={"ok": True})

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]


def connection(auth: dict[str, Any], **extra: Any) -> ConnectionConfig:
    return ConnectionConfig.model_validate(
        {
            "base_url": BASE_URL,
            "auth": auth,
            "headers": {"X-Tenant": "t1"},
            "params": {"tenant": "t1"},
            "retry": {"max_attempts": 1},
            **extra,
        }
    )


def carries_credentials(request: httpx.Request) -> bool:
    text = str(request.url) + " " + " ".join(f"{k}: {v}" for k, v in request.headers.items())
    return (
        "authorization" in request.headers
        or "x-api-key" in request.headers
        or KEY in text
        or TOKEN in text
        or "x-tenant" in request.headers
        or "tenant=" in str(request.url)
    )


@pytest.mark.parametrize("kind", sorted(AUTHS))
async def test_credentials_are_not_sent_to_another_origin(kind: str) -> None:
    api = Recorder()
    config = connection(AUTHS[kind])
    async with client_from_config(
        f"origins-{kind}", config, transport=httpx.MockTransport(api)
    ) as c:
        await c.get("/items")
        await c.get("https://elsewhere.example.net/next?page=2")
        await c.get("http://api.example.com/v1/items")  # another scheme: another origin
        await c.get("https://api.example.com:8443/v1/items")  # another port
        await c.get("https://api.example.com.evil.test/v1/items")
        await c.get("https://api.example.com@evil.test/v1/items")
    own, *foreign = [r for r in api.requests if not r.url.path.endswith("/oauth/token")]
    assert carries_credentials(own)
    assert len(foreign) == 5
    for request in foreign:
        assert not carries_credentials(request), request.url
        assert request.headers["user-agent"].startswith("interlink/")


@pytest.mark.parametrize("kind", sorted(AUTHS))
async def test_allowed_origins_receive_credentials(kind: str) -> None:
    api = Recorder()
    config = connection(AUTHS[kind], allowed_origins=["https://files.example.net"])
    async with client_from_config(
        f"allowed-{kind}", config, transport=httpx.MockTransport(api)
    ) as c:
        await c.get("https://files.example.net/next?page=2")
        await c.get("https://other.example.net/next?page=2")
    assert carries_credentials(api.to("files.example.net")[0])
    assert not carries_credentials(api.to("other.example.net")[0])


def test_the_same_origin_is_the_same_scheme_host_and_port() -> None:
    client = ApiClient("https://API.example.com/v1", allowed_origins=["http://127.0.0.1:8080"])
    assert client.origin == "https://api.example.com"
    for url in (
        "/items",
        "items?page=2",
        "https://api.example.com/other/path",
        "https://api.example.com:443/v1/items",
        "HTTPS://api.EXAMPLE.com/v1",
        "http://127.0.0.1:8080/x?y=1",
    ):
        assert client.allows(url), url
    for url in (
        "http://api.example.com/v1",
        "https://api.example.com:444/v1",
        "https://sub.api.example.com/v1",
        "https://api.example.com.evil.test/v1",
        "https://api.example.com@evil.test/v1",
        "http://127.0.0.1:8081/x",
        "http://127.0.0.1/x",
        "ftp://api.example.com/v1",
    ):
        assert not client.allows(url), url
    assert origin_of("https://h.test:8443/a/b?token=secret#f") == "https://h.test:8443"
    assert origin_of("https://h.test:443/a") == "https://h.test"
    assert origin_of("http://user:pw@h.test/a") == "http://h.test"


def test_allowed_origins_are_validated_and_normalised() -> None:
    config = connection(
        AUTHS["bearer"], allowed_origins=["HTTPS://Files.Example.net:443/", "http://127.0.0.1:9"]
    )
    assert config.allowed_origins == ["https://files.example.net", "http://127.0.0.1:9"]
    for bad in ("files.example.net", "https://files.example.net/path", "https://x?q=1", "*"):
        with pytest.raises(ValueError, match="allowed_origins"):
            connection(AUTHS["bearer"], allowed_origins=[bad])


# -- a query key: added once, at send time; never in the URLs shown ---------------------------


async def test_a_query_key_already_in_the_url_is_sent_once() -> None:
    """A next link echoes the key it was called with; the key used to be added once more on
    every page (10 copies after 10 pages)."""
    api = Recorder()
    auth = ApiKeyAuth(KEY, name="api_key", location="query")
    async with ApiClient(BASE_URL, auth=auth, transport=httpx.MockTransport(api)) as client:
        await client.get(f"/items?page=2&api_key={KEY}")
        await client.get(f"/items?api_key={KEY}&api_key={KEY}&page=3")
        await client.get("/items?api_key=stale-value&page=4")
        await client.get("/items?page=5&xapi_key=1")
    pairs = [r.url.params.multi_items() for r in api.requests]
    assert pairs == [
        [("page", "2"), ("api_key", KEY)],
        [("page", "3"), ("api_key", KEY)],
        [("page", "4"), ("api_key", KEY)],
        [("page", "5"), ("xapi_key", "1"), ("api_key", KEY)],
    ]


async def test_responses_and_errors_show_the_url_from_before_auth(caplog) -> None:
    api = Recorder()
    config = connection(AUTHS["api_key_query"])
    async with client_from_config("before-auth", config, transport=httpx.MockTransport(api)) as c:
        response = await c.get("/items", params={"page": 2})
        with caplog.at_level(logging.DEBUG, logger="interlink.http"):
            with pytest.raises(NotFoundError) as caught:
                await c.get("/missing", params={"page": 3})
    assert api.requests[0].url.params["api_key"] == KEY
    assert str(url_before_auth(response.request)) == f"{BASE_URL}/items?tenant=t1&page=2"
    assert caught.value.url == f"{BASE_URL}/missing?tenant=t1&page=3"
    assert "api_key" not in str(caught.value)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"{BASE_URL}/missing?tenant=t1&page=3 -> 404" in logged
    assert "api_key" not in logged and KEY not in logged


def test_strip_credentials_takes_the_connection_secrets_out_of_a_url() -> None:
    client = ApiClient(BASE_URL, auth=ApiKeyAuth(KEY, name="api_key", location="query"))
    client.redactor.add_secret("tok/en+SECRET")
    strip = client.strip_credentials
    assert (
        strip(f"{BASE_URL}/items?page=2&api_key={KEY}&size=5") == f"{BASE_URL}/items?page=2&size=5"
    )
    assert strip(f"{BASE_URL}/items?API_KEY=x&page=2") == f"{BASE_URL}/items?page=2"
    assert strip(f"{BASE_URL}/items?other={KEY}") == f"{BASE_URL}/items"
    assert strip(f"{BASE_URL}/items?t=tok%2Fen%2BSECRET&p=1#f") == f"{BASE_URL}/items?p=1#f"
    assert strip(f"https://u:{KEY}@api.example.com/v1/x") == "https://api.example.com/v1/x"
    # Page tokens and signatures of other parameters are not the connection's: kept.
    kept = f"{BASE_URL}/items?page_token=abc&signature=xyz&cursor=q&token=t1&key=k"
    assert strip(kept) == kept
    assert strip("/relative?page=2") == "/relative?page=2"


def test_a_header_key_named_like_a_page_parameter_does_not_strip_it() -> None:
    """The name of a key sent in a header is no reason to drop that parameter from links."""
    config = connection({"type": "api_key", "key": KEY, "name": "token"})
    client = client_from_config("header-token", config)
    link = f"{BASE_URL}/items?token=next-page-token"
    assert client.strip_credentials(link) == link
    assert client.strip_credentials(f"{BASE_URL}/items?echo={KEY}") == f"{BASE_URL}/items"


# -- two real servers: A is the connection, B another origin ---------------------------------


class Seen:
    def __init__(self) -> None:
        self.authorization: list[str | None] = []

    def app(self) -> Starlette:
        async def items(request: Request) -> JSONResponse:
            self.authorization.append(request.headers.get("authorization"))
            return JSONResponse({"data": []})

        return Starlette(routes=[Route("/items", items)])


@pytest.fixture
def two_servers() -> Iterator[tuple[tuple[str, Seen], tuple[str, Seen]]]:
    a, b = Seen(), Seen()
    with SandboxServer(a.app()) as server_a, SandboxServer(b.app()) as server_b:
        yield (server_a.url, a), (server_b.url, b)


async def test_a_direct_call_to_another_origin_goes_without_credentials(two_servers) -> None:
    (url_a, a), (url_b, b) = two_servers
    async with ApiClient(url_a, auth=BearerAuth(TOKEN)) as client:
        await client.get("/items")
        await client.get(f"{url_b}/items?page=2")
    assert a.authorization == [f"Bearer {TOKEN}"]
    assert b.authorization == [None]
    async with ApiClient(url_a, auth=BearerAuth(TOKEN), allowed_origins=[url_b]) as client:
        await client.get(f"{url_b}/items?page=2")
    assert b.authorization == [None, f"Bearer {TOKEN}"]


async def test_connection_params_and_headers_are_masked_in_errors_and_logs(caplog) -> None:
    """Review finding: `params: {appid: ...}` and `headers: {X-Api-Key: ...}` showed in
    ApiError, its body excerpt and the DEBUG log."""
    import logging

    from interlink.errors import ApiError
    from interlink.http import ApiClient

    appid, header = "owm-SECRET-abc123456", "hdr-SECRET-zyx987654"

    def handler(request: httpx.Request) -> httpx.Response:
        echoed = f"invalid key {request.headers.get('x-api-key')} / {request.url.params['appid']}"
        return httpx.Response(401, text=echoed)

    caplog.set_level(logging.DEBUG, logger="interlink")
    async with ApiClient(
        "https://api.example.com/v1",
        params={"appid": appid, "format": "json"},
        headers={"X-Api-Key": header, "Accept": "application/json"},
        transport=httpx.MockTransport(handler),
    ) as api:
        with pytest.raises(ApiError) as caught:
            await api.get("/items")
        link = api.strip_credentials(f"https://api.example.com/v1/items?page=2&appid={appid}")
    shown = [str(caught.value), str(caught.value.url), caught.value.body_excerpt or "", caplog.text]
    assert caught.value.body_excerpt and "***" in caught.value.body_excerpt
    assert not any(appid in text or header in text for text in shown)
    assert link == "https://api.example.com/v1/items?page=2"


@pytest.mark.parametrize(
    "link",
    [
        "https://api.example.com/v1/x?p=2;api_key={key}",
        "https://api.example.com/v1/x/{key}/next",
        "https://api.example.com/v1/x?p=2#api_key={key}",
        "https://api.example.com/v1/x?p={key},2",
        "https://api.example.com/v1/x?next=https%3A%2F%2Fa%3Fapi_key%3D{key}",
    ],
)
async def test_a_link_echoing_the_key_where_it_cannot_be_taken_out_is_refused(link) -> None:
    """Review finding: only whole query pairs were taken out; a key echoed anywhere else
    was stored in the checkpoint as it came."""
    from interlink.errors import PaginationError

    key = KEY
    config = connection(AUTHS["api_key_query"])
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    async with client_from_config("echoes", config, transport=transport) as api:
        assert api.strip_credentials(f"{BASE_URL}/x?p=2&api_key={key}") == f"{BASE_URL}/x?p=2"
        with pytest.raises(PaginationError, match="refusing to store or follow it") as caught:
            api.strip_credentials(link.format(key=key))
    assert key not in str(caught.value)
