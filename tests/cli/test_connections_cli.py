"""`interlink connections enable | disable | disconnect | list` on a real project: the
sandbox's OAuth2 provider, an SQLite file, and the vault's key file beside it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from interlink.cli.main import app
from interlink.config import load_config
from interlink.oauth import Vault
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.store import Store, list_switches, load_token, save_token

CLIENT, SECRET = "provider-client", "provider-secret"


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, str]]:
    sandbox = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(sandbox)) as server:
        yield sandbox, server.url


def project(tmp_path: Path, url: str, revocation_url: str | None = None) -> Path:
    path = tmp_path / "interlink.yaml"
    (tmp_path / "state").mkdir(exist_ok=True)
    auth: dict[str, Any] = {
        "type": "oauth2",
        "token_url": f"{url}/oauth/token",
        "revocation_url": revocation_url or f"{url}/oauth/revoke",
        "client_id": CLIENT,
        "client_secret": SECRET,
        "auth_method": "client_secret_post",
    }
    path.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{tmp_path / 'state' / 'interlink.db'}",
                "connections": {
                    "provider": {"base_url": f"{url}/api", "auth": auth},
                    "shop": {"base_url": f"{url}/api"},
                },
            }
        )
    )
    return path


def connect(config: Path, account: str, grant: dict[str, Any]) -> None:
    store = Store.open(load_config(config).database)
    try:
        token_set = {
            "access_token": grant["access_token"],
            "refresh_token": grant["refresh_token"],
            "expires_at": time.time() + grant["expires_in"],
        }
        ciphertext = Vault.open(store.engine).encrypt_json(token_set)
        with store.transaction() as conn:
            save_token(
                conn,
                "provider",
                account,
                ciphertext,
                token_set["expires_at"],
                expected_version=None,
            )
    finally:
        store.close()


def cli(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, ["connections", *args, "--config", str(config)], input=input)


def stored(config: Path, account: str) -> bool:
    store = Store.open(load_config(config).database)
    try:
        return load_token(store.engine, "provider", account) is not None
    finally:
        store.close()


def test_disable_and_enable_say_what_they_did_and_what_already_was(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    sandbox, url = provider
    config = project(tmp_path, url)
    connect(config, "acct_1001", sandbox.grant(CLIENT, "acct_1001"))

    off = cli(config, "disable", "provider", "--account", "acct_1001", "--reason", "left us")
    assert off.exit_code == 0, off.output
    assert off.stdout.startswith("Switched account 'acct_1001' of connection 'provider' off;")
    assert "`interlink connections enable provider --account acct_1001`" in off.stdout
    again = cli(config, "disable", "provider", "-a", "acct_1001", "--reason", "other")
    assert again.exit_code == 0
    assert "is already off (since " in again.stdout and "left us" in again.stdout

    shown = cli(config, "list")
    assert shown.exit_code == 0, shown.output
    assert all(len(line) <= 80 for line in shown.stdout.splitlines())
    assert "off" in shown.stdout and "off since" in shown.stdout and "left us" in shown.stdout
    [listed, _] = json.loads(cli(config, "list", "--json").stdout)
    [account] = listed["accounts"]
    assert account["enabled"] is False and account["disabled"]["by"] == "cli"

    whole = cli(config, "disable", "shop")
    assert whole.exit_code == 0 and "Switched connection 'shop' off;" in whole.stdout
    assert cli(config, "enable", "shop").stdout.strip() == "Switched connection 'shop' on."
    assert cli(config, "enable", "shop").stdout.strip() == "Connection 'shop' is already on."

    cli(config, "disable", "provider")
    on = cli(config, "enable", "provider", "--account", "acct_1001")
    assert on.exit_code == 0 and "Switched account 'acct_1001'" in on.stdout
    assert "Connection 'provider' itself is off" in on.stderr
    assert cli(config, "enable", "provider").exit_code == 0
    store = Store.open(load_config(config).database)
    try:
        assert list_switches(store.engine) == []
    finally:
        store.close()
    assert stored(config, "acct_1001")  # nothing was deleted


def test_unknown_connections_and_accounts_exit_2_with_one_line(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    sandbox, url = provider
    config = project(tmp_path, url)
    connect(config, "acct_1001", sandbox.grant(CLIENT, "acct_1001"))
    cases = [
        (
            ("disable", "crm"),
            "no connection named 'crm' in interlink.yaml (connections: provider, shop)",
        ),
        (("enable", "crm"), "connections: provider, shop"),
        (
            ("disable", "provider", "-a", "acct_9"),
            "'acct_9' is not connected to 'provider' (connected: 'acct_1001')",
        ),
        (("disable", "shop", "-a", "acct_1001"), "uses none auth: it has no accounts"),
        (("disable", "provider", "-a", ""), "leave --account out"),
        (("disconnect", "provider", "-a", "acct_9", "--yes"), "'acct_9' is not connected"),
        (("disconnect", "crm", "--yes"), "no connection named 'crm'"),
    ]
    for args, expected in cases:
        result = cli(config, *args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (args, result.stderr)


def test_disconnect_asks_first_then_revokes_and_forgets(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    sandbox, url = provider
    config = project(tmp_path, url)
    grant = sandbox.grant(CLIENT, "acct_1001")
    connect(config, "acct_1001", grant)

    declined = cli(config, "disconnect", "provider", "--account", "acct_1001", input="n\n")
    assert declined.exit_code == 1 and "Revoke and forget the token" in declined.stdout
    assert stored(config, "acct_1001") and sandbox.stats.revocations == 0

    done = cli(config, "disconnect", "provider", "--account", "acct_1001", input="y\n")
    assert done.exit_code == 0, done.output
    assert "Revoked the grant (refresh_token) and forgot the token of account 'acct_1001'" in (
        done.stdout
    )
    assert not stored(config, "acct_1001") and sandbox.stats.revocations == 1
    headers = {"Authorization": f"Bearer {grant['access_token']}"}
    assert httpx.get(f"{url}/api/me", headers=headers).status_code == 401
    for secret in (grant["access_token"], grant["refresh_token"], SECRET):
        assert secret not in done.output
    assert cli(config, "disconnect", "provider", "-a", "acct_1001", "--yes").exit_code == 2


def test_a_failed_revocation_exits_1_and_keeps_the_token_until_forget_anyway(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    sandbox, url = provider
    config = project(tmp_path, url, revocation_url="http://127.0.0.1:9/revoke")
    connect(config, "acct_1001", sandbox.grant(CLIENT, "acct_1001"))

    failed = cli(config, "disconnect", "provider", "-a", "acct_1001", "--yes")
    assert failed.exit_code == 1, failed.output
    [line] = failed.stderr.strip().splitlines()
    assert "could not be reached" in line and "the token is kept" in line
    assert stored(config, "acct_1001")

    forced = cli(config, "disconnect", "provider", "-a", "acct_1001", "--yes", "--forget-anyway")
    assert forced.exit_code == 0, forced.output
    assert "the provider did not revoke it" in forced.stdout
    assert "Note: not revoked" in forced.stderr
    assert not stored(config, "acct_1001")
