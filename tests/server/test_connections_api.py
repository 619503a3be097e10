"""`/api/v1/connections/{connection}/disable | enable | disconnect` on the real app, a real
SQLite file and the sandbox's OAuth2 provider: write scope, the envelope, who did it
(never the key), errors as the rest of the API gives them, and a real revocation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.oauth import Vault
from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app
from interlink.server import create_app
from interlink.store import Store, connection_switches, create_api_key, load_token, save_token

from .conftest import assert_error, assert_meta

CLIENT, SECRET = "provider-client", "provider-secret"
API = "/api/v1/connections"


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, str]]:
    sandbox = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(sandbox)) as server:
        yield sandbox, server.url


@dataclass
class Api:
    config: InterlinkConfig
    store: Store
    client: httpx.AsyncClient
    keys: dict[str, str]
    key_ids: dict[str, int]
    sandbox: OAuthProvider
    url: str

    async def post(self, path: str, scope: str = "write", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[scope]}", **kwargs.pop("headers", {})}
        return await self.client.post(f"{API}{path}", headers=headers, **kwargs)

    async def listing(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.keys['read']}"}
        answer = await self.client.get(API, headers=headers)
        assert answer.status_code == 200, answer.text
        return {c["name"]: c for c in answer.json()["data"]}

    def connect(self, account: str) -> dict[str, Any]:
        grant = self.sandbox.grant(CLIENT, account)
        token_set = {
            "access_token": grant["access_token"],
            "refresh_token": grant["refresh_token"],
            "expires_at": time.time() + grant["expires_in"],
        }
        ciphertext = Vault.open(self.store.engine).encrypt_json(token_set)
        with self.store.transaction() as conn:
            save_token(
                conn,
                "provider",
                account,
                ciphertext,
                token_set["expires_at"],
                expected_version=None,
            )
        return grant


def make_config(database: str, url: str, revocation_url: str | None = None) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {
                "provider": {
                    "base_url": f"{url}/api",
                    "auth": {
                        "type": "oauth2",
                        "token_url": f"{url}/oauth/token",
                        "revocation_url": revocation_url or f"{url}/oauth/revoke",
                        "client_id": CLIENT,
                        "client_secret": SECRET,
                        "auth_method": "client_secret_post",
                    },
                },
                "shop": {"base_url": "http://127.0.0.1:9"},
            },
        }
    )


async def _api(tmp_path: Path, provider: tuple[OAuthProvider, str], **kw: Any) -> Any:
    sandbox, url = provider
    config = make_config(f"sqlite:///{tmp_path / 'api.db'}", url, **kw)
    store = Store.open(config.database)
    made = {scope: create_api_key(store.engine, "ops", scope) for scope in ("read", "write")}
    keys = {scope: key.secret for scope, key in made.items()}
    ids = {scope: key.key.id for scope, key in made.items()}
    transport = httpx.ASGITransport(app=create_app(config, store=store))
    client = httpx.AsyncClient(transport=transport, base_url="http://interlink.test")
    return Api(config, store, client, keys, ids, sandbox, url)


@pytest.fixture
async def api(tmp_path: Path, provider: tuple[OAuthProvider, str]) -> AsyncIterator[Api]:
    made = await _api(tmp_path, provider)
    yield made
    await made.client.aclose()
    made.store.close()


async def test_switching_needs_write_and_records_the_key_not_its_secret(api: Api) -> None:
    refused = await api.post("/shop/disable", scope="read", json={"reason": "x"})
    assert_error(refused, 403, "FORBIDDEN")

    answer = await api.post("/shop/disable", json={"reason": "moving to v3"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert_meta(body, answer)
    data = body["data"]
    assert (data["connection"], data["account"], data["enabled"], data["changed"]) == (
        "shop",
        "",
        False,
        True,
    )
    assert data["disabled"]["reason"] == "moving to v3"
    assert data["disabled"]["by"] == f"api key {api.key_ids['write']} (ops)"
    with api.store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(connection_switches)).mappings()]
    assert [r["disabled_by"] for r in rows] == [data["disabled"]["by"]]
    assert not any(secret in str(rows) + answer.text for secret in api.keys.values())

    listed = await api.listing()
    assert listed["shop"]["enabled"] is False
    assert listed["shop"]["disabled"]["reason"] == "moving to v3"
    assert listed["provider"]["enabled"] is True

    again = (await api.post("/shop/disable", json={"reason": "other"})).json()["data"]
    assert again["changed"] is False and again["disabled"]["reason"] == "moving to v3"

    on = await api.post("/shop/enable")  # no body at all
    assert on.status_code == 200, on.text
    assert on.json()["data"] | {"disabled": None} == {
        "connection": "shop",
        "account": "",
        "enabled": True,
        "changed": True,
        "disabled": None,
        "released": 0,  # held webhook deliveries queued: tests/oauth/test_switches.py
    }
    assert (await api.post("/shop/enable", json={})).json()["data"]["changed"] is False
    assert (await api.listing())["shop"]["enabled"] is True


async def test_an_account_is_switched_alone(api: Api) -> None:
    api.connect("acct_1001")
    api.connect("acct_1002")
    answer = await api.post("/provider/disable", json={"account": "acct_1001"})
    assert answer.status_code == 200, answer.text
    accounts = {a["account"]: a for a in (await api.listing())["provider"]["accounts"]}
    assert accounts["acct_1001"]["enabled"] is False
    assert accounts["acct_1002"]["enabled"] is True
    await api.post("/provider/disable")
    held = (await api.post("/provider/enable", json={"account": "acct_1001"})).json()["data"]
    assert held["changed"] is True and held["enabled"] is False  # the connection is still off


async def test_errors_come_in_the_envelope_like_the_rest_of_the_api(api: Api) -> None:
    api.connect("acct_1001")
    missing = assert_error(await api.post("/crm/disable"), 404, "NOT_FOUND")
    assert "'crm'" in missing["message"] and "provider, shop" in missing["message"]
    assert_error(await api.post("/crm/disconnect"), 404, "NOT_FOUND")

    unconnected = assert_error(
        await api.post("/provider/disable", json={"account": "acct_9"}), 422, "VALIDATION_ERROR"
    )
    [detail] = unconnected["details"]
    assert detail["field"] == "account" and "connected: 'acct_1001'" in detail["issue"]
    no_accounts = assert_error(
        await api.post("/shop/enable", json={"account": "acct_1001"}), 422, "VALIDATION_ERROR"
    )
    assert "has no accounts" in no_accounts["details"][0]["issue"]

    for body in ({"reason": "x", "extra": 1}, {"account": "no spaces"}, {"reason": ""}):
        bad = assert_error(await api.post("/provider/disable", json=body), 422, "VALIDATION_ERROR")
        assert bad["details"], body
    assert_error(await api.post("/provider/enable", json={"reason": "x"}), 422, "VALIDATION_ERROR")
    assert_error(
        await api.post(
            "/provider/disable", content=b"{", headers={"Content-Type": "application/json"}
        ),
        400,
        "INVALID_REQUEST",
    )
    assert_error(
        await api.post(
            "/provider/disable", content=b"reason=x", headers={"Content-Type": "text/plain"}
        ),
        400,
        "INVALID_REQUEST",
    )
    assert_error(await api.post("/bad name/disable"), 422, "VALIDATION_ERROR")
    with api.store.engine.connect() as conn:
        assert conn.execute(sa.select(connection_switches)).first() is None


async def test_disconnect_revokes_at_the_provider_and_forgets(api: Api) -> None:
    grant = api.connect("acct_1001")
    refused = await api.post("/provider/disconnect", scope="read", json={"account": "acct_1001"})
    assert_error(refused, 403, "FORBIDDEN")
    answer = await api.post("/provider/disconnect", json={"account": "acct_1001"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {
        "connection": "provider",
        "account": "acct_1001",
        "revoked": "refresh_token",
        "forgotten": True,
        "note": None,
    }
    assert api.sandbox.stats.revocations == 1
    me = httpx.get(
        f"{api.url}/api/me", headers={"Authorization": f"Bearer {grant['access_token']}"}
    )
    assert me.status_code == 401
    assert load_token(api.store.engine, "provider", "acct_1001") is None
    assert (await api.listing())["provider"]["accounts"] == []
    again = await api.post("/provider/disconnect", json={"account": "acct_1001"})
    assert_error(again, 422, "VALIDATION_ERROR")


async def test_a_revocation_the_provider_does_not_confirm_is_a_502(
    tmp_path: Path, provider: tuple[OAuthProvider, str]
) -> None:
    api = await _api(tmp_path, provider, revocation_url="http://127.0.0.1:9/revoke")
    try:
        grant = api.connect("acct_1001")
        failed = assert_error(
            await api.post("/provider/disconnect", json={"account": "acct_1001"}),
            502,
            "REVOCATION_FAILED",
        )
        assert "the token is kept" in failed["message"]
        assert grant["refresh_token"] not in failed["message"]
        assert load_token(api.store.engine, "provider", "acct_1001") is not None
        forced = await api.post(
            "/provider/disconnect", json={"account": "acct_1001", "forget_anyway": True}
        )
        assert forced.status_code == 200, forced.text
        data = forced.json()["data"]
        assert data["revoked"] is None and "not revoked" in data["note"]
        assert load_token(api.store.engine, "provider", "acct_1001") is None
    finally:
        await api.client.aclose()
        api.store.close()
