"""Review of credentials in errors (session 8, brief R5): a server that echoes what it was
sent, on a real port, and every form of the secret looked for in the raised error."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from interlink.config import ConnectionConfig
from interlink.errors import ApiError
from interlink.http import ApiClient, client_from_config
from interlink.sandbox import SandboxServer

PASSWORD = "hunter2-SECRET-77b1c0"
KEY_AS_USER = "sk_test_SECRET4c9e7d1a"


BEARER_WITH_SLASHES = "tok/SECRET+9f2c/41d0e7=="


async def _php_echo(request: Request) -> Response:
    # PHP's json_encode (WooCommerce, Magento...) writes `/` as `\/` by default.
    given = request.headers.get("authorization", "").replace("/", "\\/")
    body = '{"message":"Invalid token: ' + given + '"}'
    return Response(body, status_code=401, media_type="application/json")


async def _echo(request: Request) -> JSONResponse:
    # What some APIs do on a refused request: say what credentials they were given.
    given = request.headers.get("authorization", "")
    return JSONResponse({"error": f"credentials not accepted: {given}"}, status_code=401)


def _forms(secret: str) -> list[str]:
    return [secret, base64.b64encode(secret.encode()).decode()]


def _error_text(base_url: str) -> str:
    async def call() -> str:
        async with ApiClient(base_url) as api:
            with pytest.raises(ApiError) as raised:
                await api.get("/things")
            return f"{raised.value}\n{raised.value!r}\n{getattr(raised.value, '__dict__', '')}"

    return asyncio.run(call())


@pytest.fixture(scope="module")
def echo() -> Iterator[SandboxServer]:
    routes = [Route("/things", _echo), Route("/php/things", _php_echo)]
    with SandboxServer(Starlette(routes=routes)) as server:
        yield server


def test_the_basic_credential_made_from_base_url_userinfo_is_masked_when_echoed(
    echo: SandboxServer,
) -> None:
    host = echo.url.removeprefix("http://")
    text = _error_text(f"http://alice:{PASSWORD}@{host}/")
    assert "credentials not accepted" in text, "the server's echo reached the error"
    credential = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert credential not in text


def test_a_key_given_as_the_userinfo_user_is_masked_when_echoed(echo: SandboxServer) -> None:
    host = echo.url.removeprefix("http://")
    text = _error_text(f"http://{KEY_AS_USER}:@{host}/")
    assert "credentials not accepted" in text
    credential = base64.b64encode(f"{KEY_AS_USER}:".encode()).decode()
    assert credential not in text


def test_a_token_echoed_json_escaped_is_masked(echo: SandboxServer) -> None:
    """`/` escaped as `\\/` in a JSON error body is the same secret, and a log reader can
    unescape it."""
    config = ConnectionConfig.model_validate(
        {"base_url": f"{echo.url}/php", "auth": {"type": "bearer", "token": BEARER_WITH_SLASHES}}
    )

    async def call() -> str:
        async with client_from_config("php", config) as api:
            with pytest.raises(ApiError) as raised:
                await api.get("/things")
            return f"{raised.value}\n{raised.value!r}"

    text = asyncio.run(call())
    assert "Invalid token" in text, "the server's echo reached the error"
    assert BEARER_WITH_SLASHES.replace("/", "\\/") not in text
    assert "SECRET" not in text
