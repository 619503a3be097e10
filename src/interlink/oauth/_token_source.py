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
import fcntl
import hashlib
import os
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
import sqlalchemy as sa

from interlink.config import InterlinkConfig, OAuth2AuthConfig
from interlink.connectors import Catalog
from interlink.errors import OAuthError
from interlink.store import (
    Store,
    TokenConflictError,
    load_token,
    mark_needs_reauth,
    save_token,
)
from interlink.types import OAuthToken, TokenSource

from ._keys import key_file_for
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
        if stored.status == "needs_reauth":
            raise OAuthError(
                "needs_reauth",
                f"connection {self.connection!r} must be connected again: its token endpoint "
                f"refused the stored grant ({stored.last_error or 'no reason given'}); give "
                "it a new refresh token in interlink.yaml",
            )
        return OAuthToken(
            access_token=str(data.get("access_token") or ""),
            refresh_token=data.get("refresh_token"),
            expires_at=data.get("expires_at"),
            token_type=str(data.get("token_type") or "Bearer"),
            scope=data.get("scope"),
        )

    def _ciphertext(self, token: OAuthToken) -> str:
        payload = {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "expires_at": token.expires_at,
            "token_type": token.token_type,
            "scope": token.scope,
            "seed": self._seed_mark,
        }
        return self.vault.encrypt(orjson.dumps(payload))

    def save_now(self, token: OAuthToken) -> None:
        ciphertext = self._ciphertext(token)
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

    def refreshing(self) -> AbstractAsyncContextManager[None]:
        """Held while this connection's token is refreshed, by every process on this
        database: a lock file beside an SQLite database, an advisory lock on PostgreSQL."""
        return _Refreshing(self)

    async def refresh_failed(self, error: OAuthError) -> None:
        """A refused refresh: an account whose grant is gone is marked `needs_reauth`, and
        every run after this one fails at once, saying so, without asking the provider."""
        if error.error in _GRANT_GONE:
            await asyncio.to_thread(self._mark, f"{error.error}: {error.description or ''}")

    def _mark(self, reason: str) -> None:
        with self.store.transaction() as conn:
            if load_token(conn, self.connection, self.account) is None:
                if self.seed is None:
                    return
                # The refused grant came from interlink.yaml: kept, so the mark has a row
                # (and is lifted when the file gives another one).
                save_token(
                    conn,
                    self.connection,
                    self.account,
                    self._ciphertext(self.seed),
                    self.seed.expires_at,
                    expected_version=None,
                )
            mark_needs_reauth(conn, self.connection, self.account, reason.strip(": "))


_GRANT_GONE = frozenset({"invalid_grant", "unauthorized_client", "invalid_client"})
"""Token endpoint errors that mean the stored grant will never work again."""


class _Refreshing:
    """The cross-process lock of one token source, as an async context manager."""

    def __init__(self, source: VaultTokenSource) -> None:
        self.source = source
        self._release: Any = None

    async def __aenter__(self) -> None:
        self._release = await asyncio.to_thread(self._acquire)

    async def __aexit__(self, *exc: object) -> None:
        release, self._release = self._release, None
        if release is not None:
            await asyncio.to_thread(release)

    def _acquire(self) -> Any:
        source = self.source
        engine = source.store.engine
        name = f"{source.connection}/{source.account}"
        if engine.dialect.name == "postgresql":
            conn = engine.connect()
            key = {"key": f"interlink:oauth-refresh:{name}"}
            conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:key))"), key)
            conn.commit()

            def unlock_pg() -> None:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:key))"), key)
                    conn.commit()
                finally:
                    conn.close()

            return unlock_pg
        key_file = key_file_for(engine)
        if key_file is None:
            return None  # SQLite in memory: one process only
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        path = key_file.with_name(f"oauth-refresh-{digest}.lock")
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)

        def unlock_file() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

        return unlock_file


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
