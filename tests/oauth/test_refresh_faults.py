"""Refreshing through the vault when things go wrong (found by review, issue 13): many
catalogs of one process waiting for one refresh, a waiter cancelled, an answer lost after
the provider rotated, a wrong client secret, a process still on an old interlink.yaml."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from interlink.config import InterlinkConfig, load_config
from interlink.errors import ApiError, OAuthError
from interlink.oauth import open_catalog
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.store import Store, load_token
from tests.oauth.test_restart import CLIENT, project

TOKEN_PATH = "/oauth/token"


class Faulty:
    """The provider's app, with its token endpoint slowed down, or its next answers lost
    (the provider acts on the request, the client gets a 502)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.delay = 0.0
        self.lose = 0
        self.lost = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(TOKEN_PATH):
            await self.app(scope, receive, send)
            return
        await asyncio.sleep(self.delay)
        if self.lose <= 0:
            await self.app(scope, receive, send)
            return
        self.lose -= 1
        self.lost += 1

        async def swallow(message: Any) -> None:
            return None

        await self.app(scope, receive, swallow)
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b"bad gateway"})


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[OAuthProvider, Faulty, Path]]:
    provider = OAuthProvider(access_token_lifetime=3600)
    faulty = Faulty(create_oauth_provider_app(provider))
    with SandboxServer(faulty) as server:
        grant = provider.grant(CLIENT, "acct_1001")
        yield provider, faulty, project(tmp_path, server.url, grant["refresh_token"])


async def fetch_me(config: InterlinkConfig, store: Store) -> int:
    async with open_catalog(config, store) as catalog:
        answer = await catalog.client("provider").request("GET", "/me")
        return answer.status_code


@pytest.mark.timeout(90)  # the deadlock this guards against hangs for good
def test_many_catalogs_of_one_process_share_one_refresh(rig) -> None:
    """More catalogs than the default thread pool has threads, all needing the refresh a
    slow token endpoint gives: none may hold a thread while it waits for the lock."""
    provider, faulty, path = rig
    faulty.delay = 0.3
    config = load_config(path)
    store = Store.open(config.database)

    async def all_of_them() -> list[int]:
        return await asyncio.wait_for(
            asyncio.gather(*(fetch_me(config, store) for _ in range(12))), timeout=30
        )

    try:
        assert asyncio.run(all_of_them()) == [200] * 12
    finally:
        store.close()
    assert provider.stats.refreshes == 1


def test_a_waiter_cancelled_leaves_no_lock_behind(rig) -> None:
    provider, faulty, path = rig
    faulty.delay = 1.0
    config = load_config(path)
    store = Store.open(config.database)

    async def scenario() -> int:
        first = asyncio.create_task(fetch_me(config, store))
        await asyncio.sleep(0.2)  # the first holds the lock, its refresh under way
        waiting = asyncio.create_task(fetch_me(config, store))
        await asyncio.sleep(0.3)
        waiting.cancel()  # a job cancelled while it waits for the lock
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await first == 200
        # Expired again: the next refresh must get the lock at once.
        provider.advance(4000)
        faulty.delay = 0.0
        return await asyncio.wait_for(fetch_me(config, store), timeout=10)

    try:
        assert asyncio.run(scenario()) == 200
    finally:
        store.close()
    assert provider.stats.refreshes == 2 and provider.stats.refresh_reuses == 0


def test_a_refresh_is_never_sent_twice_by_the_client(rig) -> None:
    """The provider rotated the refresh token, the answer was lost: sending the old token
    again would revoke the grant at once. The client does not resend it."""
    provider, faulty, path = rig
    faulty.lose = 1
    config = load_config(path)
    store = Store.open(config.database)
    try:
        with pytest.raises((ApiError, OAuthError)):
            asyncio.run(fetch_me(config, store))
    finally:
        store.close()
    assert faulty.lost == 1
    assert provider.stats.refreshes == 1
    assert provider.stats.refresh_reuses == 0 and provider.stats.families_revoked == 0


def test_a_wrong_client_secret_does_not_mark_the_grant(rig) -> None:
    provider, _, path = rig
    settings = yaml.safe_load(path.read_text())
    wrong = copy.deepcopy(settings)
    wrong["connections"]["provider"]["auth"]["client_secret"] = "not-the-secret"
    bad = InterlinkConfig.model_validate(wrong)
    store = Store.open(bad.database)
    try:
        with pytest.raises(OAuthError, match="invalid_client"):
            asyncio.run(fetch_me(bad, store))
        stored = load_token(store.engine, "provider", "")
        assert stored is None or stored.status == "active"
        # The secret fixed: the grant, never refused, works.
        assert asyncio.run(fetch_me(load_config(path), store)) == 200
    finally:
        store.close()


def test_a_process_on_an_old_interlink_yaml_uses_the_newer_grant(rig, tmp_path: Path) -> None:
    """A worker not restarted after interlink.yaml got a new token: its old seed is in the
    stored set's lineage, so it uses the stored (newer) tokens, and nothing is marked."""
    provider, _, path = rig
    old = load_config(path)
    store = Store.open(old.database)
    try:
        assert asyncio.run(fetch_me(old, store)) == 200  # the old grant, refreshed
        settings = yaml.safe_load(path.read_text())
        settings["connections"]["provider"]["auth"]["refresh_token"] = provider.grant(
            CLIENT, "acct_1001"
        )["refresh_token"]
        new = InterlinkConfig.model_validate(settings)
        assert asyncio.run(fetch_me(new, store)) == 200  # the new grant takes over
        provider.advance(4000)  # every access token expired
        assert asyncio.run(fetch_me(old, store)) == 200  # the old process: stored tokens
        assert asyncio.run(fetch_me(new, store)) == 200
        stored = load_token(store.engine, "provider", "")
        assert stored is not None and stored.status == "active"
    finally:
        store.close()
    assert provider.stats.refresh_reuses == 0
