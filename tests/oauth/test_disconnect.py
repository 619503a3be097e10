"""Disconnecting an account against the sandbox's OAuth2 provider: the grant is really
revoked there (RFC 7009: the old tokens are refused afterwards, the provider counted the
revocation), then the token and the account's switch-off are forgotten; a provider
without a revocation endpoint, or one that fails, is handled as the issue asks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from interlink.config import InterlinkConfig
from interlink.oauth import (
    AccountNotConnectedError,
    RevocationError,
    UnknownConnectionError,
    Vault,
    disconnect,
    new_key,
    switch_off,
)
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.store import Store, list_switches, load_token, save_token
from tests.jobs.procrastinate_schema import fresh_schema

CLIENT, SECRET = "provider-client", "provider-secret"


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, str]]:
    sandbox = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(sandbox)) as server:
        yield sandbox, server.url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'disconnect.db'}"
        return
    monkeypatch.setenv("INTERLINK_SECRET_KEY", new_key())
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_disconnect") as url:
        yield url


def make_config(database: str, url: str, **auth: Any) -> InterlinkConfig:
    settings: dict[str, Any] = {
        "type": "oauth2",
        "token_url": f"{url}/oauth/token",
        "revocation_url": f"{url}/oauth/revoke",
        "client_id": CLIENT,
        "client_secret": SECRET,
        "auth_method": "client_secret_post",
        **auth,
    }
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {
                "provider": {"base_url": f"{url}/api", "auth": settings},
                "plain": {"base_url": f"{url}/api"},
            },
        }
    )


def connect(store: Store, account: str, grant: dict[str, Any], *, refresh: bool = True) -> None:
    """Store `grant` for `account` as the vault keeps a connected account's tokens."""
    token_set = {
        "access_token": grant["access_token"],
        "refresh_token": grant["refresh_token"] if refresh else None,
        "expires_at": time.time() + grant["expires_in"],
        "token_type": "Bearer",
        "scope": grant.get("scope"),
        "seeds": [],
        "raw": None,
    }
    ciphertext = Vault.open(store.engine).encrypt_json(token_set)
    with store.transaction() as conn:
        save_token(
            conn, "provider", account, ciphertext, token_set["expires_at"], expected_version=None
        )


def me(url: str, access_token: str) -> int:
    return httpx.get(
        f"{url}/api/me", headers={"Authorization": f"Bearer {access_token}"}
    ).status_code


def refresh(url: str, refresh_token: str) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLIENT,
        "client_secret": SECRET,
    }
    return httpx.post(f"{url}/oauth/token", data=form)


def stats(url: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{url}/_stats").json()
    return found


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_disconnect_revokes_the_grant_and_forgets_only_that_account(
    database: str, provider: tuple[OAuthProvider, str], auth_method: str
) -> None:
    sandbox, url = provider
    config = make_config(database, url, auth_method=auth_method)
    store = Store.open(config.database)
    try:
        first, second = sandbox.grant(CLIENT, "acct_1001"), sandbox.grant(CLIENT, "acct_1002")
        connect(store, "acct_1001", first)
        connect(store, "acct_1002", second)
        switch_off(config, store, "provider", "acct_1001", reason="leaving", by="cli")
        assert me(url, first["access_token"]) == 200

        done = asyncio.run(disconnect(config, store, "provider", "acct_1001"))

        assert (done.revoked, done.forgotten, done.note) == ("refresh_token", True, None)
        # Really revoked at the provider: the old tokens are refused, and it counted it.
        assert me(url, first["access_token"]) == 401
        assert refresh(url, first["refresh_token"]).json()["error"] == "invalid_grant"
        counted = stats(url)
        assert counted["oauth"]["revocations"] == 1
        assert counted["oauth"]["invalid_clients"] == 0
        # Forgotten here, with the account's switch; the other account is untouched.
        assert load_token(store.engine, "provider", "acct_1001") is None
        assert list_switches(store.engine) == []
        assert load_token(store.engine, "provider", "acct_1002") is not None
        assert me(url, second["access_token"]) == 200
    finally:
        store.close()


def test_a_token_the_provider_no_longer_knows_is_still_a_success(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    sandbox, url = provider
    config = make_config(f"sqlite:///{tmp_path / 'x.db'}", url)
    store = Store.open(config.database)
    try:
        grant = sandbox.grant(CLIENT, "acct_1001")
        connect(store, "acct_1001", grant)
        sandbox.revoke(sandbox.clients[CLIENT], grant["refresh_token"])  # gone already
        sent = stats(url)["paths"].get("/oauth/revoke", 0)
        done = asyncio.run(disconnect(config, store, "provider", "acct_1001"))
        assert done.revoked == "refresh_token"
        assert stats(url)["paths"]["/oauth/revoke"] == sent + 1  # asked, and got 200
        assert load_token(store.engine, "provider", "acct_1001") is None
    finally:
        store.close()


def test_without_a_refresh_token_the_access_token_is_revoked(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    sandbox, url = provider
    config = make_config(f"sqlite:///{tmp_path / 'x.db'}", url)
    store = Store.open(config.database)
    try:
        grant = sandbox.grant(CLIENT, "acct_1002")
        connect(store, "acct_1002", grant, refresh=False)
        done = asyncio.run(disconnect(config, store, "provider", "acct_1002"))
        assert done.revoked == "access_token"
        assert me(url, grant["access_token"]) == 401
        assert stats(url)["oauth"]["revocations"] == 1
    finally:
        store.close()


class FailingProvider:
    """A revocation endpoint that answers `status` (with `error`) to refresh-token hints
    and 200 to the rest, and remembers every form it was sent."""

    def __init__(self, status: int, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.forms: list[dict[str, str]] = []
        self.authorizations: list[str | None] = []

    async def revoke(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self.forms.append(form)
        self.authorizations.append(request.headers.get("authorization"))
        if form.get("token_type_hint") == "refresh_token":
            body = {"error": self.error, "error_description": f"no {form['token']}"}
            return JSONResponse(body if self.error else {}, status_code=self.status)
        return Response(status_code=200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/revoke", self.revoke, methods=["POST"])])


def test_a_failed_revocation_keeps_the_token_unless_told_to_forget_it(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    sandbox, url = provider
    failing = FailingProvider(503)
    with SandboxServer(failing.app()) as down:
        config = make_config(
            f"sqlite:///{tmp_path / 'x.db'}",
            url,
            revocation_url=f"{down.url}/revoke",
            auth_method="client_secret_basic",
        )
        store = Store.open(config.database)
        try:
            grant = sandbox.grant(CLIENT, "acct_1001")
            connect(store, "acct_1001", grant)
            with pytest.raises(RevocationError) as info:
                asyncio.run(disconnect(config, store, "provider", "acct_1001"))
            message = str(info.value)
            assert "answered 503" in message and "the token is kept" in message
            assert "--forget-anyway" in message
            assert grant["refresh_token"] not in message  # echoed by the endpoint: masked
            assert len(failing.forms) == 1, "the fault fired once, and was not retried"
            # The credentials went to the revocation URL, as the connection's auth_method says.
            assert failing.forms[0]["token_type_hint"] == "refresh_token"
            assert "client_secret" not in failing.forms[0]
            assert (failing.authorizations[0] or "").startswith("Basic ")
            assert load_token(store.engine, "provider", "acct_1001") is not None

            done = asyncio.run(
                disconnect(config, store, "provider", "acct_1001", forget_anyway=True)
            )
            assert done.revoked is None and done.note is not None
            assert "not revoked" in done.note and "503" in done.note
            assert load_token(store.engine, "provider", "acct_1001") is None
            assert me(url, grant["access_token"]) == 200  # still valid at the provider
        finally:
            store.close()


def test_an_unreachable_endpoint_keeps_the_token(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    sandbox, url = provider
    config = make_config(
        f"sqlite:///{tmp_path / 'x.db'}", url, revocation_url="http://127.0.0.1:9/revoke"
    )
    store = Store.open(config.database)
    try:
        connect(store, "acct_1001", sandbox.grant(CLIENT, "acct_1001"))
        with pytest.raises(RevocationError, match="could not be reached: ConnectError"):
            asyncio.run(disconnect(config, store, "provider", "acct_1001"))
        assert load_token(store.engine, "provider", "acct_1001") is not None
    finally:
        store.close()


def test_an_unsupported_refresh_token_falls_back_to_the_access_token_and_says_so(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    """Only the access token could be revoked: the grant may live on at the provider, so
    the token is kept and the failure said (review finding 10), unless forget_anyway."""
    from interlink.errors import RevocationError

    sandbox, url = provider
    picky = FailingProvider(400, "unsupported_token_type")
    with SandboxServer(picky.app()) as other:
        config = make_config(
            f"sqlite:///{tmp_path / 'x.db'}", url, revocation_url=f"{other.url}/revoke"
        )
        store = Store.open(config.database)
        try:
            connect(store, "acct_1001", sandbox.grant(CLIENT, "acct_1001"))
            with pytest.raises(RevocationError, match="would not revoke the refresh token"):
                asyncio.run(disconnect(config, store, "provider", "acct_1001"))
            hints = [form["token_type_hint"] for form in picky.forms]
            assert hints == ["refresh_token", "access_token"]
            assert all(form["client_secret"] == SECRET for form in picky.forms)  # post
            assert load_token(store.engine, "provider", "acct_1001") is not None
            done = asyncio.run(
                disconnect(config, store, "provider", "acct_1001", forget_anyway=True)
            )
            assert done.forgotten and done.note and "refresh token" in done.note
            assert load_token(store.engine, "provider", "acct_1001") is None
        finally:
            store.close()


@pytest.mark.parametrize(
    ("preset", "their_way"),
    [
        ("github", "DELETE https://api.github.com/applications/{client_id}/grant"),
        ("stripe", "POST https://connect.stripe.com/oauth/deauthorize"),
        ("facebook", "DELETE https://graph.facebook.com/me/permissions"),
        (None, "the connection has no revocation_url: the grant stays valid"),
    ],
)
def test_a_provider_without_an_endpoint_gets_the_token_forgotten_and_a_note(
    tmp_path: Path, provider: tuple[OAuthProvider, str], preset: str | None, their_way: str
) -> None:
    sandbox, url = provider
    config = make_config(
        f"sqlite:///{tmp_path / 'x.db'}",
        url,
        preset=preset,
        revocation_url=None,
        refresh_token="seed-refresh-token",
        auth_method="client_secret_post",
    )
    store = Store.open(config.database)
    try:
        connect(store, "", sandbox.grant(CLIENT, "acct_1001"))
        switch_off(config, store, "provider", reason="paused", by="cli")
        done = asyncio.run(disconnect(config, store, "provider"))
        assert done.revoked is None and done.note is not None
        assert their_way in done.note
        assert "interlink.yaml still gives connection 'provider' a token" in done.note
        assert stats(url)["paths"].get("/oauth/revoke", 0) == 0
        assert load_token(store.engine, "provider", "") is None
        # The connection's own switch is the connection's: disconnecting keeps it.
        [kept] = list_switches(store.engine)
        assert (kept.connection, kept.account, kept.reason) == ("provider", "", "paused")
    finally:
        store.close()


def test_what_is_not_there_cannot_be_disconnected(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    _, url = provider
    config = make_config(f"sqlite:///{tmp_path / 'x.db'}", url)
    store = Store.open(config.database)
    try:
        with pytest.raises(UnknownConnectionError, match="connections: provider, plain"):
            asyncio.run(disconnect(config, store, "nope"))
        with pytest.raises(AccountNotConnectedError, match="'acct_1001' is not connected"):
            asyncio.run(disconnect(config, store, "provider", "acct_1001"))
        with pytest.raises(AccountNotConnectedError, match="the default account is not"):
            asyncio.run(disconnect(config, store, "provider"))
        with pytest.raises(AccountNotConnectedError, match="uses none auth"):
            asyncio.run(disconnect(config, store, "plain"))
    finally:
        store.close()
