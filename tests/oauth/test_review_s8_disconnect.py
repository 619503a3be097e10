"""Review of disconnect against a refresh under way (session 8, brief R5): the sandbox
provider on a real port, its token answers held back after it acted on them, the vault on
a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from interlink.config import load_config
from interlink.errors import InterlinkError
from interlink.oauth import Vault, VaultTokenSource, disconnect, open_catalog
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.store import Store, load_token
from interlink.types import OAuthToken
from tests.oauth.test_restart import CLIENT, project


class SlowAnswers:
    """The provider's app, each token answer sent `delay` seconds after the provider
    acted on the request (rotated the refresh token)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.delay = 0.0
        self.held = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/oauth/token"):
            await self.app(scope, receive, send)
            return
        messages: list[Any] = []

        async def keep(message: Any) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        if self.delay:
            self.held += 1
            await asyncio.sleep(self.delay)
        for message in messages:
            await send(message)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[OAuthProvider, SlowAnswers, Path, str]]:
    provider = OAuthProvider(access_token_lifetime=3600)
    slow = SlowAnswers(create_oauth_provider_app(provider))
    with SandboxServer(slow) as server:
        grant = provider.grant(CLIENT, "acct_1001")
        path = project(tmp_path, server.url, "unused-seed-of-the-default-account")
        raw = yaml.safe_load(path.read_text())
        raw["connections"]["provider"]["auth"]["revocation_url"] = f"{server.url}/oauth/revoke"
        path.write_text(yaml.safe_dump(raw))
        yield provider, slow, path, grant["refresh_token"]


def test_a_refresh_under_way_does_not_bring_a_disconnected_account_back(
    rig: tuple[OAuthProvider, SlowAnswers, Path, str],
) -> None:
    """A worker's refresh of `acme` has reached the provider (the refresh token rotated)
    when `acme` is disconnected. Disconnect must not answer "forgotten" while that refresh
    then stores the new grant again: the account would be back in the vault, listed as
    connected, holding a grant the user asked to remove."""
    provider, slow, path, refresh = rig
    config = load_config(path)
    store = Store.open(config.database)
    source = VaultTokenSource(store, Vault.open(store.engine), "provider", account="acme")
    source.save_now(OAuthToken(access_token="", refresh_token=refresh, expires_at=0.0))
    slow.delay = 1.0

    async def scenario() -> Any:
        async with open_catalog(config, store, accounts={"provider": "acme"}) as catalog:
            reading = asyncio.create_task(catalog.client("provider").request("GET", "/me"))
            await asyncio.sleep(0.4)  # the refresh is done at the provider, answer held
            done = await asyncio.wait_for(disconnect(config, store, "provider", "acme"), 30)
            try:
                await reading
            except InterlinkError:
                pass  # the read may fail: its grant is gone
        return done

    try:
        done = asyncio.run(scenario())
        assert slow.held >= 1, "the refresh answer was held back"
        stored = load_token(store.engine, "provider", "acme")
    finally:
        store.close()
    assert done.revoked == "refresh_token"
    assert done.forgotten, done.note
    assert stored is None, "the disconnected account's token is back in the vault"
