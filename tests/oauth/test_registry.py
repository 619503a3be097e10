"""`interlink connections list` and `GET /api/v1/connections`: each connection, switched on
or off, its last good and last failed run, and the state of its stored tokens, never the
tokens themselves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.config import load_config
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.server import create_app
from interlink.store import Store, create_api_key
from tests.oauth.test_restart import CLIENT, project, run


def listed(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["connections", "list", "--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_listing_follows_the_grant_and_shows_no_token(tmp_path: Path) -> None:
    provider = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(provider)) as server:
        grant = provider.grant(CLIENT, "acct_1001")
        config = project(tmp_path, server.url, grant["refresh_token"])
        shown = listed(config)
        assert "no token" in shown and "last run" in shown

        assert run(config).returncode == 0
        shown = listed(config)
        assert "provider" in shown and "oauth2" in shown and "ok " in shown
        assert all(len(line) <= 80 for line in shown.splitlines())
        [described] = json.loads(listed(config, "--json"))
        [account] = described["accounts"]
        assert account["status"] == "active" and account["expires_at"] > 0
        assert account["enabled"] is True and described["enabled"] is True
        good = described["last_success"]
        assert (good["pipeline"], good["status"]) == ("customers", "succeeded")
        assert good["finished_at"] > 0 and described["last_error"] is None

        client = provider.clients[CLIENT]
        stored_refresh = _stored_refresh(config)
        provider.revoke(client, stored_refresh)
        provider.advance(4000)
        assert run(config).returncode != 0
        shown = listed(config)
        assert "needs_reauth" in shown and "invalid_grant" in shown and "err " in shown
        assert all(len(line) <= 80 for line in shown.splitlines())
        [described] = json.loads(listed(config, "--json"))
        bad = described["last_error"]
        assert bad["status"] == "failed" and bad["run_id"] > good["run_id"]
        assert "invalid_grant" in bad["message"]
        assert described["last_success"] == good
        for secret in (grant["refresh_token"], grant["access_token"], stored_refresh):
            assert secret not in shown
            assert secret not in listed(config, "--json")


def _stored_refresh(config: Path) -> str:
    from interlink.oauth import Vault
    from interlink.store import load_token

    settings = load_config(config)
    store = Store.open(settings.database)
    try:
        stored = load_token(store.engine, "provider", "")
        assert stored is not None
        data = json.loads(Vault.open(store.engine).decrypt(stored.ciphertext, where=stored.where))
        return str(data["refresh_token"])
    finally:
        store.close()


async def test_the_api_lists_connections_with_a_read_key(tmp_path: Path) -> None:
    config = project(tmp_path, "http://127.0.0.1:9", "never-used-refresh-token")
    settings = load_config(config)
    store = Store.open(settings.database)
    key = create_api_key(store.engine, "reader", "read").secret
    application = create_app(settings, store=store)
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            refused = await client.get("/api/v1/connections")
            assert refused.status_code == 401
            answer = await client.get(
                "/api/v1/connections", headers={"Authorization": f"Bearer {key}"}
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == [
            {
                "name": "provider",
                "auth": "oauth2",
                "enabled": True,
                "disabled": None,
                "last_success": None,
                "last_error": None,
                "accounts": [],
            }
        ]
        assert "never-used-refresh-token" not in answer.text
    finally:
        store.close()
