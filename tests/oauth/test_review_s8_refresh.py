"""Review of refreshing through the vault (session 8, brief R5): the sandbox provider on a
real port (it rotates refresh tokens and revokes the whole grant when a used one comes
back), the vault on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc

from interlink.config import load_config
from interlink.oauth import VaultTokenSource, open_catalog
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.store import Store
from tests.oauth.test_restart import CLIENT, project


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[OAuthProvider, Path]]:
    provider = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(provider)) as server:
        grant = provider.grant(CLIENT, "acct_1001")
        yield provider, project(tmp_path, server.url, grant["refresh_token"])


def test_a_refreshed_token_the_vault_could_not_take_is_not_lost(
    rig: tuple[OAuthProvider, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider rotated the refresh token, then the vault's write failed (the SQLite
    file locked past busy_timeout, a PostgreSQL connection dropped). The old refresh token
    is dead from that moment: the new set must be used and saved later, never dropped for
    the dead one to be sent again (which revokes the whole grant)."""
    provider, path = rig
    config = load_config(path)
    store = Store.open(config.database)
    real_save = VaultTokenSource.save_now
    faults = {"left": 1, "fired": 0}

    def flaky_save(self: VaultTokenSource, *args: Any, **kwargs: Any) -> None:
        if faults["left"] > 0:
            faults["left"] -= 1
            faults["fired"] += 1
            raise sqlalchemy.exc.OperationalError("UPDATE", {}, Exception("database is locked"))
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(VaultTokenSource, "save_now", flaky_save)

    async def scenario() -> list[int]:
        statuses = []
        async with open_catalog(config, store) as catalog:
            api = catalog.client("provider")
            statuses.append((await api.request("GET", "/me")).status_code)
            statuses.append((await api.request("GET", "/me")).status_code)
        provider.advance(4000)  # expired: the next process refreshes from the vault
        async with open_catalog(config, store) as catalog:
            statuses.append((await catalog.client("provider").request("GET", "/me")).status_code)
        return statuses

    try:
        statuses = asyncio.run(scenario())
    finally:
        store.close()
    assert faults["fired"] == 1
    assert statuses == [200, 200, 200]
    assert provider.stats.refresh_reuses == 0
    assert provider.stats.refreshes == 2
