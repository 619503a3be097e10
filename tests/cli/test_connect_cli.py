"""`interlink connect`: a real process, a real browser-like client, the sandbox provider.

Two ways: the redirect URI is a free loopback port (the command catches the callback
itself), or it is `interlink serve`'s callback (the command prints a link for the server
and waits for the flow to end there).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from interlink.config import load_config
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.sandbox._oauth_provider import OAuthClient
from interlink.server import create_app
from interlink.store import Store, list_tokens
from tests.oauth.test_connect_flow import _free_port

CLIENT, SECRET = "provider-client", "provider-secret"
_LINK = re.compile(r"^\s+(http://\S+)$", re.MULTILINE)


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, str]]:
    provider = OAuthProvider(account_key="stripe_user_id")
    with SandboxServer(create_oauth_provider_app(provider)) as server:
        yield provider, server.url


def _write(tmp_path: Path, provider_url: str, redirect: str) -> Path:
    path = tmp_path / "interlink.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{tmp_path / 'interlink.db'}",
                "connections": {
                    "provider": {
                        "base_url": f"{provider_url}/api",
                        "auth": {
                            "type": "oauth2",
                            "authorize_url": f"{provider_url}/oauth/authorize",
                            "token_url": f"{provider_url}/oauth/token",
                            "redirect_uri": redirect,
                            "client_id": CLIENT,
                            "client_secret": SECRET,
                            "account_key": "stripe_user_id",
                        },
                    }
                },
            }
        )
    )
    return path


def _start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from interlink.cli.main import main; main()",
            "connect",
            "provider",
            "--config",
            str(config),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _link(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for _ in range(5):
        line = process.stdout.readline()
        found = _LINK.match(line)
        if found:
            return found[1]
    raise AssertionError("no link printed")


def _browse(link: str) -> httpx.Response:
    """Follow the link through the provider's consent back to the callback."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        return browser.get(link)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_connect_catches_the_callback_on_a_loopback_port(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    oauth, url = provider
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    oauth.clients[CLIENT] = OAuthClient(CLIENT, SECRET, redirect)
    config = _write(tmp_path, url, redirect)
    process = _start(config, "--timeout", "30")
    try:
        link = _link(process)
        assert link.startswith(f"{url}/oauth/authorize?")
        page = _browse(link)
    finally:
        code, out, err = _finish(process)
    assert page.status_code == 200 and "Connected" in page.text
    assert code == 0, err
    assert "Connected 'provider', account 'acct_1001'." in out
    settings = load_config(config)
    store = Store.open(settings.database)
    try:
        [token] = list_tokens(store.engine)
    finally:
        store.close()
    assert token.account == "acct_1001"
    assert oauth.stats.codes_redeemed == 1


def test_connect_through_a_running_server(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    oauth, url = provider
    port = _free_port()
    redirect = f"http://127.0.0.1:{port}/connect/provider/callback"
    oauth.clients[CLIENT] = OAuthClient(CLIENT, SECRET, redirect)
    config = _write(tmp_path, url, redirect)
    settings = load_config(config)
    store = Store.open(settings.database)
    try:
        with SandboxServer(create_app(settings, store=store), port=port):
            process = _start(config, "--account", "northwind", "--timeout", "30")
            try:
                link = _link(process)
                assert link.startswith(
                    f"http://127.0.0.1:{port}/connect/provider/authorize?ticket="
                )
                page = _browse(link)
            finally:
                code, out, err = _finish(process)
        accounts = [t.account for t in list_tokens(store.engine)]
    finally:
        store.close()
    assert page.status_code == 200, page.text
    assert code == 0, err
    assert "Connected 'provider', account 'northwind'." in out
    assert accounts == ["northwind"]


def test_declined_consent_exits_1_with_the_reason(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    oauth, url = provider
    oauth.consent = "deny"
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    oauth.clients[CLIENT] = OAuthClient(CLIENT, SECRET, redirect)
    process = _start(_write(tmp_path, url, redirect), "--timeout", "30")
    try:
        page = _browse(_link(process))
    finally:
        code, _, err = _finish(process)
    assert page.status_code == 400
    assert code == 1 and "access_denied" in err


def test_no_browser_in_time_exits_1(tmp_path: Path, provider: tuple[OAuthProvider, str]) -> None:
    _, url = provider
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    process = _start(_write(tmp_path, url, redirect), "--timeout", "1")
    code, _, err = _finish(process)
    assert code == 1 and "no answer from the browser within 1 s" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"authorize_url": None}, "connections.provider.auth.authorize_url: needed"),
        ({"type": "bearer", "token": "x"}, "only auth.type oauth2 connections"),
    ],
)
def test_a_connection_that_cannot_be_connected_exits_2(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    config = _write(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/callback")
    data = yaml.safe_load(config.read_text())
    auth = data["connections"]["provider"]["auth"]
    if change.get("type") == "bearer":
        data["connections"]["provider"]["auth"] = change
    else:
        auth.pop("authorize_url")
    config.write_text(yaml.safe_dump(data))
    code, _, err = _finish(_start(config))
    assert code == 2 and message in err and "Traceback" not in err
