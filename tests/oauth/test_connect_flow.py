"""Connecting an account in a browser, through `interlink serve` and the sandbox provider.

A "browser" here is an httpx client with a cookie jar that follows each redirect by hand:
the API makes a connect link, the link sets the session cookie and sends the browser to
the provider, whose automatic consent sends it back to the callback with a code. Every
security test checks what the provider saw (its counters), not only interlink's answer.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
import yaml

from interlink.config import load_config
from interlink.oauth import ConnectFlows, Vault
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.sandbox._oauth_provider import OAuthClient
from interlink.server import create_app
from interlink.store import Store, create_api_key, list_tokens, oauth_flows

CLIENT, SECRET = "provider-client", "provider-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Setup:
    provider: OAuthProvider
    provider_url: str
    url: str
    key: str
    store: Store
    flows: ConnectFlows
    db: Path
    config_path: Path

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )

    def link(self, connection: str = "provider", **body: Any) -> dict[str, Any]:
        with self.api() as api:
            answer = api.post(f"/connections/{connection}/authorize", json=body or None)
        assert answer.status_code == 201, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    def stats(self) -> dict[str, int]:
        return httpx.get(f"{self.provider_url}/_stats").json()["oauth"]  # type: ignore[no-any-return]


def _project(tmp_path: Path, provider_url: str, port: int, **auth: Any) -> Path:
    def connection(name: str) -> dict[str, Any]:
        return {
            "base_url": f"{provider_url}/api",
            "auth": {
                "type": "oauth2",
                "authorize_url": f"{provider_url}/oauth/authorize",
                "token_url": f"{provider_url}/oauth/token",
                "revocation_url": f"{provider_url}/oauth/revoke",
                "redirect_uri": f"http://127.0.0.1:{port}/connect/{name}/callback",
                "client_id": CLIENT,
                "client_secret": SECRET,
                "auth_method": "client_secret_post",
                "scope": "read",
                **auth,
            },
        }

    path = tmp_path / "interlink.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{tmp_path / 'interlink.db'}",
                "connections": {"provider": connection("provider"), "other": connection("other")},
                "resources": {
                    "provider": {
                        "customers": {
                            "path": "/customers",
                            "records": "data",
                            "paginate": {"type": "offset", "page_size": 100},
                        }
                    }
                },
                "pipelines": {
                    "customers": {
                        "source": "provider.customers",
                        "destination": {"sql": "customers_{account}"},
                        "write": "replace",
                    }
                },
            }
        )
    )
    return path


def _serve(tmp_path: Path, provider: OAuthProvider, **auth: Any) -> Iterator[Setup]:
    with SandboxServer(create_oauth_provider_app(provider)) as provider_server:
        port = _free_port()
        redirect = f"http://127.0.0.1:{port}/connect/provider/callback"
        provider.clients[CLIENT] = OAuthClient(CLIENT, SECRET, redirect)
        config_path = _project(tmp_path, provider_server.url, port, **auth)
        config = load_config(config_path)
        store = Store.open(config.database)
        key = create_api_key(store.engine, "tests", "write").secret
        app = create_app(config, store=store)
        with SandboxServer(app, port=port) as server:
            yield Setup(
                provider,
                provider_server.url,
                server.url,
                key,
                store,
                app.state.connect_flows,
                tmp_path / "interlink.db",
                config_path,
            )
        store.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    provider = OAuthProvider(account_key="stripe_user_id")
    yield from _serve(tmp_path, provider, account_key="stripe_user_id")


def _browser() -> httpx.Client:
    return httpx.Client(follow_redirects=False, timeout=10)


def _to_provider(browser: httpx.Client, link: str) -> str:
    """Open a connect link: interlink's redirect to the provider's authorize URL."""
    answer = browser.get(link)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def _consent(browser: httpx.Client, authorize: str) -> str:
    """The provider's automatic consent: the redirect back to interlink's callback."""
    answer = browser.get(authorize)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_browser_connects_an_account_and_a_run_reads_its_data(setup: Setup) -> None:
    link = setup.link()
    assert link["status"] == "ticket" and link["url"].startswith(setup.url)
    with _browser() as browser:
        authorize = _to_provider(browser, link["url"])
        cookie = browser.cookies.get("interlink_connect")
        assert cookie, "the link binds the flow to a browser session"
        query = _query(authorize)
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["redirect_uri"].endswith("/connect/provider/callback")
        assert query["scope"] == "read" and query["state"]
        back = _consent(browser, authorize)
        done = browser.get(back)
    assert done.status_code == 200, done.text
    assert "Connected" in done.text and "acct_1001" in done.text
    assert done.headers["cache-control"] == "no-store"

    with setup.api() as api:
        flow = api.get(f"/connections/provider/flows/{link['id']}").json()["data"]
    assert flow["status"] == "connected" and flow["connected_account"] == "acct_1001"
    assert "url" not in flow or flow["url"] is None
    [token] = list_tokens(setup.store.engine, "provider")
    assert token.account == "acct_1001" and token.status == "active"
    assert setup.stats()["codes_redeemed"] == 1

    # The stored grant works: a run for that account reads that account's customers.
    from typer.testing import CliRunner

    from interlink.cli.main import app as cli

    result = CliRunner().invoke(
        cli, ["run", "customers", "--account", "acct_1001", "--config", str(setup.config_path)]
    )
    assert result.exit_code == 0, result.output
    with sqlite3.connect(setup.db) as db:
        assert db.execute("SELECT count(*) FROM customers_acct_1001").fetchone() == (25,)


def test_no_token_in_the_database_file_or_the_logs(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    link = setup.link()
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, link["url"]))
        code = _query(back)["code"]
        assert browser.get(back).status_code == 200
    stored = Vault.open(setup.store.engine)
    with setup.store.engine.connect() as conn:
        ciphertext = conn.execute(sa.text("SELECT ciphertext FROM interlink_oauth_tokens")).scalar()
    tokens = stored.decrypt_json(str(ciphertext))
    secrets_seen = [tokens["access_token"], tokens["refresh_token"], code, SECRET]
    setup.store.engine.dispose()
    raw = setup.db.read_bytes()
    for wal in setup.db.parent.glob("interlink.db-*"):
        raw += wal.read_bytes()
    # interlink's own logs (the server's access log included); not the test's client's.
    logged = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("interlink")
    )
    assert "connected connection 'provider' account 'acct_1001'" in logged
    # The access log (uvicorn's, not captured in-process) masks what the URLs carry.
    from interlink.server._accesslog import mask_target

    masked = mask_target(back.split("127.0.0.1", 1)[1] + " " + link["url"])
    assert masked.count("=***") == 3 and "iss=" in masked
    for secret in [*secrets_seen, _query(back)["state"], link["url"].split("ticket=")[1]]:
        assert secret not in logged
    for secret in secrets_seen:
        assert secret.encode() not in raw
    # The provider's answer is kept (encrypted), without its tokens.
    assert tokens["raw"]["stripe_user_id"] == "acct_1001"
    assert "access_token" not in tokens["raw"] and "refresh_token" not in tokens["raw"]
    # Neither is the state or the PKCE verifier kept in clear.
    with setup.store.engine.connect() as conn:
        row = conn.execute(sa.select(oauth_flows)).mappings().one()
    assert row["verifier"] is None and row["status"] == "connected"
    assert _query(back)["state"] not in str(dict(row))


def test_a_caller_named_account_wins_and_a_second_account_connects_beside_it(
    setup: Setup,
) -> None:
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, setup.link(account="northwind")["url"]))
        assert browser.get(back).status_code == 200
    httpx.post(f"{setup.provider_url}/_consent", json={"account": "acct_1002"})
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, setup.link()["url"]))
        page = browser.get(back)
    assert page.status_code == 200 and "acct_1002" in page.text
    accounts = [t.account for t in list_tokens(setup.store.engine, "provider")]
    assert accounts == ["acct_1002", "northwind"]


def test_a_wrong_state_is_refused_and_nothing_is_stored(setup: Setup) -> None:
    link = setup.link()
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, link["url"]))
        forged = back.replace(_query(back)["state"], "x" * 43)
        page = browser.get(forged)
        assert page.status_code == 400 and "never issued here" in page.text
        missing = browser.get(back.split("?")[0] + "?code=" + _query(back)["code"])
        assert missing.status_code == 400 and "no state" in missing.text
    assert list_tokens(setup.store.engine) == []
    assert setup.stats()["codes_redeemed"] == 0


def test_a_replayed_state_is_refused(setup: Setup) -> None:
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, setup.link()["url"]))
        assert browser.get(back).status_code == 200
        again = browser.get(back)
    assert again.status_code == 400 and "used already" in again.text
    assert setup.stats()["codes_redeemed"] == 1
    assert setup.stats()["code_replays"] == 0, "the replay never reached the provider"


def test_ten_racing_callbacks_redeem_the_code_once(setup: Setup) -> None:
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, setup.link()["url"]))
        cookies = dict(browser.cookies)
    answers: list[int] = []

    def call() -> None:
        with httpx.Client(cookies=cookies, timeout=10) as client:
            answers.append(client.get(back).status_code)

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [200] + [400] * 9
    assert setup.stats()["codes_redeemed"] == 1 and setup.stats()["code_replays"] == 0


def test_an_expired_state_is_refused(setup: Setup) -> None:
    setup.flows.lifetime = 0.3
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, setup.link()["url"]))
        import time

        time.sleep(0.5)
        page = browser.get(back)
    assert page.status_code == 400 and "expired" in page.text
    assert setup.stats()["codes_redeemed"] == 0
    assert list_tokens(setup.store.engine) == []


def test_an_expired_or_reused_ticket_is_refused(setup: Setup) -> None:
    link = setup.link()
    with _browser() as browser:
        _to_provider(browser, link["url"])
        again = browser.get(link["url"])
    assert again.status_code == 400 and "used already or has expired" in again.text
    setup.flows.lifetime = 0.2
    late = setup.link()
    import time

    time.sleep(0.4)
    with _browser() as browser:
        assert browser.get(late["url"]).status_code == 400
    with _browser() as browser:
        no_ticket = browser.get(late["url"].split("?")[0])
    assert no_ticket.status_code == 400 and "no ticket" in no_ticket.text


def test_a_callback_in_another_browser_session_is_refused(setup: Setup) -> None:
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, setup.link()["url"]))
    with _browser() as attacker:  # no cookie: the victim's browser never started this
        page = attacker.get(back)
    assert page.status_code == 400 and "different browser session" in page.text
    with _browser() as other:
        other.cookies.set("interlink_connect", "A" * 43)
        assert other.get(back).status_code == 400
    assert setup.stats()["codes_redeemed"] == 0
    assert list_tokens(setup.store.engine) == []


def test_a_callback_for_another_connection_is_refused_and_voids_the_flow(
    setup: Setup,
) -> None:
    link = setup.link()
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, link["url"]))
        crossed = back.replace("/connect/provider/", "/connect/other/")
        page = browser.get(crossed)
        assert page.status_code == 400 and "another connection" in page.text
        # ...and the state cannot be used at its own callback afterwards either.
        assert browser.get(back).status_code == 400
    with setup.api() as api:
        flow = api.get(f"/connections/provider/flows/{link['id']}").json()["data"]
    assert flow["status"] == "failed" and "another connection" in flow["error"]
    assert setup.stats()["codes_redeemed"] == 0


def test_a_ticket_of_one_connection_does_not_start_another(setup: Setup) -> None:
    link = setup.link()
    with _browser() as browser:
        crossed = browser.get(link["url"].replace("/connect/provider/", "/connect/other/"))
        assert crossed.status_code == 400
        assert _to_provider(browser, link["url"])  # still good for its own connection


def test_a_wrong_pkce_verifier_is_refused_by_the_provider(setup: Setup) -> None:
    link = setup.link()
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, link["url"]))
        vault = Vault.open(setup.store.engine)
        with setup.store.transaction() as conn:
            conn.execute(
                sa.update(oauth_flows)
                .where(oauth_flows.c.id == link["id"])
                .values(verifier=vault.encrypt("w" * 86))
            )
        page = browser.get(back)
    assert page.status_code == 502 and "refused the code" in page.text
    assert "invalid_grant" in page.text
    assert setup.stats()["pkce_failures"] == 1
    assert list_tokens(setup.store.engine) == []


def test_an_expired_code_is_refused(setup: Setup) -> None:
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, setup.link()["url"]))
        setup.provider.advance(setup.provider.code_lifetime + 1)
        page = browser.get(back)
    assert page.status_code == 502 and "invalid_grant" in page.text
    assert setup.stats()["codes_expired"] == 1


def test_declined_consent_shows_the_providers_error(setup: Setup) -> None:
    httpx.post(f"{setup.provider_url}/_consent", json={"consent": "deny"})
    link = setup.link()
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, link["url"]))
        assert _query(back)["error"] == "access_denied"
        page = browser.get(back)
    assert page.status_code == 400 and "Access was not granted" in page.text
    with setup.api() as api:
        flow = api.get(f"/connections/provider/flows/{link['id']}").json()["data"]
    assert flow["status"] == "failed" and "access_denied" in flow["error"]


def test_repeated_callback_parameters_are_refused(setup: Setup) -> None:
    with _browser() as browser:
        back = _consent(browser, _to_provider(browser, setup.link()["url"]))
        page = browser.get(back + "&state=" + "y" * 43)
    assert page.status_code == 400 and "more than once" in page.text
    assert setup.stats()["codes_redeemed"] == 0


def test_the_api_refuses_bad_requests(setup: Setup) -> None:
    with setup.api() as api:
        unknown = api.post("/connections/nope/authorize")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
        bad = api.post("/connections/provider/authorize", json={"account": "../x"})
        assert bad.status_code == 422
        extra = api.post("/connections/provider/authorize", json={"acount": "x"})
        assert extra.status_code == 422
        missing = api.get("/connections/provider/flows/flow_" + "0" * 24)
        assert missing.status_code == 404
    with httpx.Client(base_url=f"{setup.url}/api/v1") as anonymous:
        assert anonymous.post("/connections/provider/authorize").status_code == 401
    with _browser() as browser:
        assert browser.get(f"{setup.url}/connect/nope/authorize?ticket=x").status_code == 404


@pytest.fixture
def no_pkce(tmp_path: Path) -> Iterator[Setup]:
    yield from _serve(tmp_path, OAuthProvider(), pkce=False)


def test_without_pkce_the_provider_refuses_and_the_page_says_so(no_pkce: Setup) -> None:
    with _browser() as browser:
        authorize = _to_provider(browser, no_pkce.link()["url"])
        assert "code_challenge" not in _query(authorize)
        back = _consent(browser, authorize)
        assert _query(back)["error"] == "invalid_request"
        page = browser.get(back)
    assert page.status_code == 400 and "invalid_request" in page.text
    assert list_tokens(no_pkce.store.engine) == []
