"""A project whose pipelines act for connected accounts of the sandbox's OAuth2 provider.

The provider serves two accounts with customers of their own: acct_1001 (25) and
acct_1002 (40). `connect` stores an account's tokens in the vault as a finished
authorization would (`provider.grant`, no browser); `commerce` is a JSON:API destination.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.oauth import Vault, VaultTokenSource
from interlink.sandbox import (
    OAuthProvider,
    SandboxServer,
    create_commerce_app,
    create_oauth_provider_app,
)
from interlink.store import Store
from interlink.types import OAuthToken

CLIENT, SECRET = "provider-client", "provider-secret"
CUSTOMERS = {"acct_1001": 25, "acct_1002": 40}


@contextmanager
def provider_server() -> Iterator[tuple[OAuthProvider, SandboxServer]]:
    """The provider and its server; each account's customers are in
    `server.app.state.customers[account]` (a `CustomerStore`)."""
    provider = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(provider)) as server:
        yield provider, server


@contextmanager
def commerce_server() -> Iterator[str]:
    with SandboxServer(create_commerce_app()) as server:
        yield server.url


def project(
    database: str,
    provider_url: str,
    *,
    account: str | None = "*",
    table: str = "customers_{account}",
    commerce_url: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """interlink.yaml as a dict: `customers` (provider -> SQL `table`, for `account`),
    and with `commerce_url` also `to_commerce` (provider -> commerce, for `account`)."""
    pipeline: dict[str, Any] = {"source": "provider.customers", "destination": {"sql": table}}
    if account is not None:
        pipeline["account"] = account
    connections: dict[str, Any] = {
        "provider": {
            "base_url": f"{provider_url}/api",
            "auth": {
                "type": "oauth2",
                "token_url": f"{provider_url}/oauth/token",
                "client_id": CLIENT,
                "client_secret": SECRET,
                "auth_method": "client_secret_post",
            },
            "retry": {"max_attempts": 1},
        }
    }
    resources: dict[str, Any] = {
        "provider": {
            "customers": {
                "path": "/customers",
                "records": "data",
                "paginate": {"type": "offset", "page_size": 10},
                "incremental": {"field": "updated_at", "param": "updated_since"},
            }
        }
    }
    pipelines: dict[str, Any] = {"customers": pipeline}
    if commerce_url is not None:
        connections["commerce"] = {
            "base_url": commerce_url,
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": f"{commerce_url}/oauth2-token",
                "client_id": "commerce-client",
                "client_secret": "commerce-secret",
            },
            "retry": {"idempotency_header": "Idempotency-Key"},
        }
        resources["commerce"] = {
            "customers": {
                "path": "/api/customers",
                "format": "jsonapi",
                "params": {"page[size]": 100},
                "paginate": {"type": "next_url", "next_path": "links.next"},
            }
        }
        to_commerce: dict[str, Any] = {
            "source": "provider.customers",
            "destination": "commerce.customers",
            "fields": {"email": "email", "first_name": "first_name", "company": "company"},
        }
        if account is not None:
            to_commerce["account"] = account
        pipelines["to_commerce"] = to_commerce
    return {
        "database": database,
        "connections": connections,
        "resources": resources,
        "pipelines": pipelines,
        **(extra or {}),
    }


def config(database: str, provider_url: str, **kwargs: Any) -> InterlinkConfig:
    return InterlinkConfig.model_validate(project(database, provider_url, **kwargs))


def connect(store: Store, provider: OAuthProvider, account: str) -> dict[str, Any]:
    """Store `account`'s tokens for connection `provider`, as a finished authorization
    would; returns the provider's answer (with the refresh token)."""
    answer = provider.grant(CLIENT, account)
    token = OAuthToken(
        access_token=answer["access_token"],
        refresh_token=answer["refresh_token"],
        expires_at=time.time() + answer["expires_in"],
        token_type="Bearer",
        scope=answer["scope"],
    )
    VaultTokenSource(store, Vault.open(store.engine), "provider", account=account).save_now(token)
    return answer


def revoke(provider: OAuthProvider, answer: dict[str, Any]) -> None:
    """The user disconnected the app at the provider: the grant and its tokens are gone."""
    client = provider.clients[CLIENT]
    provider.revoke(client, answer["refresh_token"])


def rows(store: Store, table: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f'SELECT * FROM "{table}"'))]


def customers_of(provider_url: str, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """What the provider's API lists for the token `answer` holds (every page)."""
    found: list[dict[str, Any]] = []
    while True:
        page = httpx.get(
            f"{provider_url}/api/customers",
            params={"offset": len(found), "limit": 100},
            headers={"Authorization": f"Bearer {answer['access_token']}"},
        ).json()
        found += page["data"]
        if len(found) >= page["total"] or not page["data"]:
            return found


def app_state(server: SandboxServer) -> Any:
    """The provider app's `state`: `customers[account]` (a `CustomerStore`), `stats`."""
    return getattr(server.app, "state")  # noqa: B009  (an ASGI callable to the type checker)
