"""No secret reaches a log line or an error, whatever the auth type and whatever goes wrong.

Each test runs one scenario against a fake server that does its worst: error bodies that
echo the request's credentials and URL, transport errors whose message holds the full URL,
token endpoint errors that quote the client secret. Every secret the connection knows (the
configured ones, the derived basic credential and the tokens issued on the way) is then
looked for in every log record and in the raised error.
"""

from __future__ import annotations

import base64
import itertools
import logging
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

import httpx
import pytest

from interlink.config import ConnectionConfig, InterlinkConfig
from interlink.errors import ApiError, NotFoundError, OAuthError, TransportError
from interlink.http import client_from_config

BASE_URL = "https://api.example.com/v1"
TOKEN_PATH = "/v1/oauth/token"

API_KEY = "apikey-SECRET-7f3a9c1e"
BEARER_TOKEN = "bearer-SECRET-5b2d8e44"
USERNAME = "alice"
PASSWORD = "password-SECRET-91c7d2"
CLIENT_ID = "client-id-public"
CLIENT_SECRET = "client-SECRET-e4f19a2b"
SEED_REFRESH = "seed-refresh-SECRET-0c6d3b"

BASIC_CREDENTIAL = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
CLIENT_BASIC_CREDENTIAL = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

_TOKEN = {"token_url": "oauth/token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

AUTH: dict[str, dict[str, Any]] = {
    "api_key_header": {"type": "api_key", "key": API_KEY},
    "api_key_query": {"type": "api_key", "key": API_KEY, "name": "appToken", "in": "query"},
    "bearer": {"type": "bearer", "token": BEARER_TOKEN},
    "basic": {"type": "basic", "username": USERNAME, "password": PASSWORD},
    "oauth2_client_credentials": {"type": "oauth2_client_credentials", **_TOKEN},
    "oauth2": {"type": "oauth2", **_TOKEN, "refresh_token": SEED_REFRESH},
}

STATIC_SECRETS: dict[str, list[str]] = {
    "api_key_header": [API_KEY],
    "api_key_query": [API_KEY],
    "bearer": [BEARER_TOKEN],
    "basic": [PASSWORD, BASIC_CREDENTIAL],
    "oauth2_client_credentials": [CLIENT_SECRET, CLIENT_BASIC_CREDENTIAL],
    "oauth2": [CLIENT_SECRET, CLIENT_BASIC_CREDENTIAL, SEED_REFRESH],
}

OAUTH_KINDS = ("oauth2_client_credentials", "oauth2")

_names = itertools.count()


class EchoServer:
    """A fake API that leaks everything it is sent back into its answers.

    - `/oauth/token` issues fresh tokens, or (with `token_error`) a 400 whose
      error_description quotes the client secret and the refresh token it was sent;
    - `/ok` answers 200; `/flaky` 503 and then 200;
    - `/missing` answers 404 with a body that repeats the credentials headers, the URL and
      the query string;
    - `/down` raises `httpx.ConnectError` whose message is the full URL.
    """

    def __init__(self, *, token_error: bool = False) -> None:
        self.token_error = token_error
        self.issued: list[str] = []
        self.leaked: list[str] = []
        self.calls: dict[str, int] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls[path] = self.calls.get(path, 0) + 1
        if path == TOKEN_PATH:
            return self._token(request)
        if path == "/v1/ok":
            return httpx.Response(200, json={"ok": True})
        if path == "/v1/flaky":
            if self.calls[path] == 1:
                return self._leak(503, f"overloaded, retry {request.url}")
            return httpx.Response(200, json={"ok": True})
        if path == "/v1/missing":
            return self._leak(
                404,
                f"no route for {request.method} {request.url} "
                f"(query {request.url.query.decode()}; "
                f"authorization {request.headers.get('authorization')}; "
                f"x-api-key {request.headers.get('x-api-key')})",
            )
        if path == "/v1/down":
            message = f"connection refused while sending {request.method} {request.url}"
            self.leaked.append(message)
            raise httpx.ConnectError(message, request=request)
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def _leak(self, status: int, message: str) -> httpx.Response:
        self.leaked.append(message)
        return httpx.Response(status, json={"message": message, "echo": message})

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if self.token_error:
            description = (
                f"client {CLIENT_ID} authenticated with wrong secret {CLIENT_SECRET}; "
                f"refresh token {form.get('refresh_token')} is revoked"
            )
            self.leaked.append(description)
            return httpx.Response(
                400, json={"error": "invalid_client", "error_description": description}
            )
        n = len(self.issued) // 2 + 1
        access, refresh = f"issued-access-SECRET-{n}-a91f", f"issued-refresh-SECRET-{n}-77c2"
        self.issued += [access, refresh]
        return httpx.Response(
            200,
            json={
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": 3600,
            },
        )


def connection(kind: str) -> ConnectionConfig:
    config = InterlinkConfig.model_validate(
        {
            "connections": {
                "svc": {
                    "base_url": BASE_URL,
                    "auth": AUTH[kind],
                    # Two attempts, and backoff short enough to sleep for real.
                    "retry": {"max_attempts": 2, "base": "1ms", "cap": "1ms"},
                }
            }
        }
    )
    return config.connections["svc"]


async def run(kind: str, path: str, server: EchoServer) -> BaseException | None:
    """GET `path` on a client built from config; the error raised, if any."""
    name = f"secrets-{kind}-{next(_names)}"
    async with client_from_config(
        name, connection(kind), transport=httpx.MockTransport(server)
    ) as client:
        try:
            await client.get(path, params={"page": 2})
        except (ApiError, OAuthError) as exc:
            return exc
    return None


def error_texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), str(exc.args)]
    for attr in ("message", "url", "body_excerpt", "description", "token_url", "error"):
        value = getattr(exc, attr, None)
        if value is not None:
            texts.append(str(value))
    return texts


def record_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    return [text for r in records for text in (r.getMessage(), str(r.__dict__))]


def assert_no_secret(texts: Iterable[str], secrets: Iterable[str]) -> None:
    secrets = list(secrets)
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret {secret!r} leaked into {text!r}"


def attempts_logged(records: Iterable[logging.LogRecord], path: str) -> list[int]:
    """The attempt numbers of the retry transport's log lines for requests to `path`."""
    return [
        r.attempt  # type: ignore[attr-defined]
        for r in records
        if r.name == "interlink.http" and httpx.URL(r.http_url).path == path  # type: ignore[attr-defined]
    ]


def secrets_of(kind: str, server: EchoServer) -> list[str]:
    return STATIC_SECRETS[kind] + server.issued


KINDS = list(AUTH)


def _scenarios() -> list[Any]:
    params = []
    for kind in KINDS:
        for scenario in ("success", "retry", "echo", "transport"):
            params.append(pytest.param(kind, scenario, id=f"{kind}-{scenario}"))
    return params


@pytest.mark.parametrize(("kind", "scenario"), _scenarios())
async def test_no_secret_in_logs_or_errors(
    kind: str, scenario: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="interlink")
    server = EchoServer()
    path = {"success": "/ok", "retry": "/flaky", "echo": "/missing", "transport": "/down"}[scenario]

    exc = await run(kind, path, server)

    records = caplog.records
    # The log lines exist, one per attempt, so that finding no secret in them means something.
    expected_attempts = {"success": [1], "retry": [1, 2], "echo": [1], "transport": [1, 2]}
    assert attempts_logged(records, "/v1" + path) == expected_attempts[scenario]
    if kind in OAUTH_KINDS:
        assert attempts_logged(records, TOKEN_PATH) == [1]
        assert len(server.issued) == 2
    if scenario in ("success", "retry"):
        assert exc is None
    elif scenario == "echo":
        assert isinstance(exc, NotFoundError)
        assert exc.body_excerpt  # The echoed body is there; its secrets are checked below.
    else:
        assert isinstance(exc, TransportError)
        assert exc.attempts == 2
        assert exc.url is not None
        assert exc.url.startswith(BASE_URL + "/down?page=2")

    secrets = secrets_of(kind, server)
    # The fake server did echo secrets, so masking is what keeps them out.
    if scenario == "echo" or (scenario == "transport" and kind == "api_key_query"):
        assert any(s in leak for leak in server.leaked for s in secrets)
    assert_no_secret(record_texts(records), secrets)
    assert_no_secret([caplog.text], secrets)
    if exc is not None:
        assert_no_secret(error_texts(exc), secrets)
    if isinstance(exc, NotFoundError):
        assert exc.body_excerpt is not None
        assert "***" in exc.body_excerpt


@pytest.mark.parametrize("kind", OAUTH_KINDS)
async def test_no_secret_in_a_token_endpoint_error(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="interlink")
    server = EchoServer(token_error=True)

    exc = await run(kind, "/ok", server)

    assert isinstance(exc, OAuthError)
    assert exc.error == "invalid_client"
    assert exc.status_code == 400
    assert exc.description is not None
    assert "***" in exc.description
    assert any(CLIENT_SECRET in leak for leak in server.leaked)
    assert attempts_logged(caplog.records, TOKEN_PATH) == [1]
    assert attempts_logged(caplog.records, "/v1/ok") == []
    secrets = secrets_of(kind, server)
    assert_no_secret(record_texts(caplog.records), secrets)
    assert_no_secret([caplog.text], secrets)
    assert_no_secret(error_texts(exc), secrets)


@pytest.mark.parametrize("kind", KINDS)
async def test_secrets_are_not_in_the_url_of_logs_even_when_the_request_succeeds(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Logs show the URL from before auth: the query key is not in it at all (issue 11)."""
    caplog.set_level(logging.DEBUG, logger="interlink")
    exc = await run(kind, "/ok", EchoServer())
    assert exc is None
    urls = [r.http_url for r in caplog.records if r.name == "interlink.http"]  # type: ignore[attr-defined]
    assert urls
    assert urls[-1] == BASE_URL + "/ok?page=2"


async def test_transport_error_traceback_has_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="interlink")
    server = EchoServer()
    exc = await run("api_key_query", "/down", server)
    assert isinstance(exc, TransportError)
    assert_no_secret(error_texts(exc), [API_KEY])  # The error itself is clean ...
    rendered = "".join(traceback.format_exception(exc))
    assert_no_secret([rendered], [API_KEY])  # ... and so is the traceback under it.


@pytest.mark.parametrize("kind", OAUTH_KINDS)
async def test_token_endpoint_echoing_its_authorization_header(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="interlink")

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        description = f"bad client credentials: {request.headers['authorization']}"
        return httpx.Response(
            400, json={"error": "invalid_client", "error_description": description}
        )

    name = f"secrets-{kind}-{next(_names)}"
    async with client_from_config(
        name, connection(kind), transport=httpx.MockTransport(token_endpoint)
    ) as client:
        with pytest.raises(OAuthError) as caught:
            await client.get("/ok")
    assert_no_secret(error_texts(caught.value), [CLIENT_BASIC_CREDENTIAL])


async def test_percent_encoded_api_key_is_masked_in_an_echoed_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="interlink")
    key = "k3y+with/base64=chars"

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": f"no route for {request.url}"})

    config = InterlinkConfig.model_validate(
        {
            "connections": {
                "svc": {
                    "base_url": BASE_URL,
                    "auth": {"type": "api_key", "key": key, "name": "api_key", "in": "query"},
                }
            }
        }
    )
    async with client_from_config(
        f"secrets-encoded-{next(_names)}",
        config.connections["svc"],
        transport=httpx.MockTransport(echo),
    ) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.get("/missing")
    encoded = {key, quote_plus(key), quote(key, safe="")}
    assert_no_secret(error_texts(caught.value), encoded)
    assert_no_secret(record_texts(caplog.records), encoded)
