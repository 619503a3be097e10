"""Tokens of `auth.type: oauth2` connections kept in the vault, so a refresh survives the
process that made it.

```python
async with open_catalog(config, store) as catalog:     # every oauth2 connection's tokens
    ...                                                 # come from, and go to, the vault
```

`OAuth2TokenAuth` (interlink.http) loads the token set before it is used and saves a
refreshed one before it uses it; `VaultTokenSource` keeps it encrypted in
`interlink_oauth_tokens`. A rotated refresh token is therefore on disk before the request
that needed it goes out, and the next process (the next `interlink run`, a restarted worker)
starts from it instead of the long-revoked one in interlink.yaml.

The `access_token` / `refresh_token` in interlink.yaml only seed the vault. A stored token
set remembers which seed it grew from (a hash); when the file gives a different one (you
reconnected by hand and pasted new tokens), the new seed wins.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson

from interlink.config import InterlinkConfig, OAuth2AuthConfig
from interlink.connectors import Catalog
from interlink.store import Store, TokenConflictError, load_token, save_token
from interlink.types import OAuthToken, TokenSource

from ._vault import Vault

__all__ = ["VaultTokenSource", "open_catalog", "seed_token", "token_sources"]


class VaultTokenSource:
    """A `TokenSource` whose token set lives encrypted in the database."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        connection: str,
        *,
        account: str = "",
        seed: OAuthToken | None = None,
    ) -> None:
        self.store = store
        self.vault = vault
        self.connection = connection
        self.account = account
        self.seed = seed
        self._seed_mark = _mark(seed)

    async def load(self) -> OAuthToken | None:
        return await asyncio.to_thread(self.load_now)

    async def save(self, token: OAuthToken) -> None:
        await asyncio.to_thread(self.save_now, token)

    def load_now(self) -> OAuthToken | None:
        stored = load_token(self.store.engine, self.connection, self.account)
        if stored is None:
            return self.seed
        data: dict[str, Any] = orjson.loads(
            self.vault.decrypt(stored.ciphertext, where=stored.where)
        )
        if self.seed is not None and data.get("seed") != self._seed_mark:
            return self.seed  # interlink.yaml gives a new token: it replaces the stored one
        return OAuthToken(
            access_token=str(data.get("access_token") or ""),
            refresh_token=data.get("refresh_token"),
            expires_at=data.get("expires_at"),
            token_type=str(data.get("token_type") or "Bearer"),
            scope=data.get("scope"),
        )

    def save_now(self, token: OAuthToken) -> None:
        payload = {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "expires_at": token.expires_at,
            "token_type": token.token_type,
            "scope": token.scope,
            "seed": self._seed_mark,
        }
        ciphertext = self.vault.encrypt(orjson.dumps(payload))
        # The newest refresh wins: with rotation, a refresh racing another process's with
        # the same refresh token is refused by the provider and never gets here; so what
        # is stored is at most as new as this. Over the version stored now, then, and once
        # more should another save land in between.
        for _ in range(3):
            try:
                with self.store.transaction() as conn:
                    current = load_token(conn, self.connection, self.account)
                    save_token(
                        conn,
                        self.connection,
                        self.account,
                        ciphertext,
                        token.expires_at,
                        expected_version=None if current is None else current.version,
                    )
                return
            except TokenConflictError:
                continue
        raise TokenConflictError(self.connection, self.account, None, None)


def seed_token(auth: OAuth2AuthConfig) -> OAuthToken | None:
    """The token set interlink.yaml gives an `oauth2` connection, if any (without an access
    token it counts as expired, so the first request refreshes it)."""
    if not auth.access_token and not auth.refresh_token:
        return None
    return OAuthToken(
        access_token=auth.access_token.get_secret_value() if auth.access_token else "",
        refresh_token=auth.refresh_token.get_secret_value() if auth.refresh_token else None,
        expires_at=None if auth.access_token else 0.0,
    )


def token_sources(config: InterlinkConfig, store: Store) -> dict[str, TokenSource]:
    """A vault-backed token source for every `oauth2` connection of `config` (the vault is
    opened only when there is one)."""
    names = [
        name
        for name, connection in config.connections.items()
        if isinstance(connection.auth, OAuth2AuthConfig)
    ]
    if not names:
        return {}
    vault = Vault.open(store.engine)
    sources: dict[str, TokenSource] = {}
    for name in names:
        auth = config.connections[name].auth
        assert isinstance(auth, OAuth2AuthConfig)
        sources[name] = VaultTokenSource(store, vault, name, seed=seed_token(auth))
    return sources


def open_catalog(config: InterlinkConfig, store: Store) -> Catalog:
    """`Catalog(config)` with every oauth2 connection's tokens kept in the vault."""
    return Catalog(config, token_sources=token_sources(config, store))


def _mark(seed: OAuthToken | None) -> str | None:
    if seed is None:
        return None
    material = f"{seed.access_token}\0{seed.refresh_token or ''}".encode()
    return hashlib.sha256(material).hexdigest()[:32]
