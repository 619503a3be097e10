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
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from interlink.config import InterlinkConfig, OAuth2AuthConfig
from interlink.errors import OAuthError
from interlink.store import (
    Store,
    StoredToken,
    TokenConflictError,
    load_token,
    mark_needs_reauth,
    save_token,
)
from interlink.types import OAuthToken, TokenSource

from ._keys import key_file_for
from ._vault import Vault

__all__ = ["VaultTokenSource", "refreshing", "seed_token", "token_sources"]


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
        if self.seed is not None and self._seed_mark not in _seeds(data):
            return self.seed  # interlink.yaml gives a new token: it replaces the stored one
        if stored.status == "needs_reauth":
            raise OAuthError(
                "needs_reauth",
                f"{_owner(self.connection, self.account)} must be connected again: its "
                f"token endpoint refused the stored grant "
                f"({stored.last_error or 'no reason given'}); run "
                f"`{_connect_command(self.connection, self.account)}`"
                + ("" if self.account else " (or give it a new refresh token in interlink.yaml)"),
            )
        return OAuthToken(
            access_token=str(data.get("access_token") or ""),
            refresh_token=data.get("refresh_token"),
            expires_at=data.get("expires_at"),
            token_type=str(data.get("token_type") or "Bearer"),
            scope=data.get("scope"),
        )

    def _ciphertext(
        self, token: OAuthToken, seeds: list[str], raw: dict[str, Any] | None = None
    ) -> str:
        payload = {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "expires_at": token.expires_at,
            "token_type": token.token_type,
            "scope": token.scope,
            # Every seed this token set grew from, newest last: a process still holding an
            # older one (not restarted after interlink.yaml changed) uses the stored set
            # instead of its own used-up token; a seed never seen before replaces it.
            "seeds": seeds,
            # The provider's whole answer when the account was connected (its account id,
            # granted scopes...), kept as the guide keeps `objects_json`.
            "raw": raw,
        }
        return self.vault.encrypt(orjson.dumps(payload))

    def _lineage(
        self, conn: sa.Connection
    ) -> tuple[StoredToken | None, list[str], dict[str, Any] | None]:
        """The stored row, the seeds a save now carries on (this process's added) and the
        provider's answer kept from when the account was connected."""
        current = load_token(conn, self.connection, self.account)
        seeds: list[str] = []
        raw: dict[str, Any] | None = None
        if current is not None:
            data = orjson.loads(self.vault.decrypt(current.ciphertext, where=current.where))
            seeds = _seeds(data)
            raw = data.get("raw") if isinstance(data.get("raw"), dict) else None
        if self._seed_mark is not None and self._seed_mark not in seeds:
            seeds = [*seeds, self._seed_mark][-_SEEDS_KEPT:]
        return current, seeds, raw

    def save_now(self, token: OAuthToken, *, raw: dict[str, Any] | None = None) -> None:
        """Store `token` (and, when an account is connected, the provider's whole answer
        `raw`; a refresh keeps the one stored)."""
        # The newest refresh wins: with rotation, a refresh racing another process's with
        # the same refresh token is refused by the provider and never gets here; so what
        # is stored is at most as new as this. Over the version stored now, then, and once
        # more should another save land in between.
        for _ in range(3):
            try:
                with self.store.transaction() as conn:
                    current, seeds, kept = self._lineage(conn)
                    save_token(
                        conn,
                        self.connection,
                        self.account,
                        self._ciphertext(token, seeds, raw if raw is not None else kept),
                        token.expires_at,
                        expected_version=None if current is None else current.version,
                    )
                return
            except TokenConflictError:
                continue
        raise TokenConflictError(self.connection, self.account, None, None)

    def stored_answer(self) -> dict[str, Any] | None:
        """The provider's answer kept from when the stored account was connected (without
        its tokens); None when nothing is stored or nothing was kept."""
        current = load_token(self.store.engine, self.connection, self.account)
        if current is None:
            return None
        data = orjson.loads(self.vault.decrypt(current.ciphertext, where=current.where))
        raw = data.get("raw")
        return raw if isinstance(raw, dict) else None

    def refreshing(self) -> AbstractAsyncContextManager[None]:
        """Held while this connection's token is refreshed, by every process on this
        database: a lock file beside an SQLite database, an advisory lock on PostgreSQL."""
        return refreshing(self.store, self.connection, self.account)

    async def refresh_failed(self, error: OAuthError) -> None:
        """A refused refresh: an account whose grant is gone (`invalid_grant`) is marked
        `needs_reauth`, and every run after this one fails at once, saying so, without
        asking the provider. Other refusals (a wrong client secret: `invalid_client`) say
        nothing about the grant and mark nothing."""
        if error.error == "invalid_grant":
            await asyncio.to_thread(self._mark, f"{error.error}: {error.description or ''}")

    def _mark(self, reason: str) -> None:
        with self.store.transaction() as conn:
            current, seeds, kept = self._lineage(conn)
            used_seed = self.seed is not None and (
                current is None or self._seed_mark not in _seeds_of(self, current)
            )
            if used_seed:
                # The refused grant came from interlink.yaml (and is newer than anything
                # stored): kept, so the mark has a row; another seed lifts it.
                assert self.seed is not None
                save_token(
                    conn,
                    self.connection,
                    self.account,
                    self._ciphertext(self.seed, seeds, kept),
                    self.seed.expires_at,
                    expected_version=None if current is None else current.version,
                )
            elif current is None:
                return
            # Under the refresh lock the token just refused is the one loaded: this one.
            mark_needs_reauth(conn, self.connection, self.account, reason.strip(": "))


_SEEDS_KEPT = 20
LOCK_WAIT = 120.0
"""Seconds a refresh waits for another process's before it gives up (OAuthError)."""
_POLL = 0.05


def _seeds(data: dict[str, Any]) -> list[str]:
    seeds = data.get("seeds")
    if isinstance(seeds, list):
        return [str(s) for s in seeds]
    return [str(data["seed"])] if data.get("seed") else []


def _seeds_of(source: VaultTokenSource, stored: StoredToken) -> list[str]:
    return _seeds(orjson.loads(source.vault.decrypt(stored.ciphertext, where=stored.where)))


def refreshing(store: Store, connection: str, account: str) -> AbstractAsyncContextManager[None]:
    """The lock every process takes while it refreshes `connection`'s `account` token (and
    `disconnect` while it revokes and forgets it): a lock file beside an SQLite database,
    an advisory lock on PostgreSQL."""
    return _Refreshing(store, connection, account)


class _Refreshing:
    """The cross-process lock of one token source, as an async context manager.

    It is taken by polling (`flock(LOCK_NB)`, `pg_try_advisory_lock`), each try a short
    call in a thread: a waiter never holds a thread while it waits (several catalogs of one
    process waiting would starve the one holding the lock of the thread its save needs),
    and a waiter cancelled mid-try releases what that try took. It gives up after
    LOCK_WAIT seconds.
    """

    def __init__(self, store: Store, connection: str, account: str) -> None:
        self.store = store
        self.connection = connection
        self.account = account
        self._release: Callable[[], None] | None = None

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_WAIT
        while True:
            attempt = loop.run_in_executor(None, self._try)
            try:
                release = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                attempt.add_done_callback(_release_taken)
                raise
            if release is not None:
                self._release = release
                return
            if loop.time() > deadline:
                raise OAuthError(
                    "refresh_locked",
                    f"another process has been refreshing {self.connection!r}'s token "
                    f"for over {LOCK_WAIT:.0f} s",
                )
            await asyncio.sleep(_POLL)

    async def __aexit__(self, *exc: object) -> None:
        release, self._release = self._release, None
        if release is not None:
            await asyncio.shield(asyncio.get_running_loop().run_in_executor(None, release))

    def _try(self) -> Callable[[], None] | None:
        """Take the lock if it is free: its release, or None when another holds it."""
        engine = self.store.engine
        name = f"{self.connection}/{self.account}"
        if engine.dialect.name == "postgresql":
            return _try_advisory(engine, f"interlink:oauth-refresh:{name}")
        key_file = key_file_for(engine)
        if key_file is None:
            return lambda: None  # SQLite in memory: one process only
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        return _try_flock(key_file.with_name(f"oauth-refresh-{digest}.lock"))


def _release_taken(attempt: asyncio.Future[Callable[[], None] | None]) -> None:
    """A try whose waiter was cancelled: give back what it took."""
    if attempt.cancelled() or attempt.exception() is not None:
        return
    release = attempt.result()
    if release is not None:
        release()


def _try_flock(path: Path) -> Callable[[], None] | None:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None

    def unlock() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    return unlock


def _try_advisory(engine: sa.Engine, key: str) -> Callable[[], None] | None:
    conn = engine.connect()
    try:
        taken = conn.execute(
            sa.text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": key}
        ).scalar()
        conn.commit()
    except BaseException:
        conn.invalidate()
        conn.close()
        raise
    if not taken:
        conn.close()
        return None

    def unlock() -> None:
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})
            conn.commit()
        except Exception:
            # A session lock outlives a rollback: a connection that could not give it
            # back is closed for good, never returned to the pool still holding it.
            conn.invalidate()
        finally:
            conn.close()

    return unlock


def _owner(connection: str, account: str) -> str:
    owner = f"connection {connection!r}"
    return owner + (f" (account {account!r})" if account else "")


def _connect_command(connection: str, account: str) -> str:
    return f"interlink connect {connection}" + (f" --account {account}" if account else "")


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


def token_sources(
    config: InterlinkConfig, store: Store, *, accounts: Mapping[str, str] | None = None
) -> dict[str, TokenSource]:
    """A vault-backed token source for every `oauth2` connection of `config`: of the
    account `accounts` names for it, else of its default account '' (the vault is opened
    only when there is one). interlink.yaml's tokens seed only the default account."""
    names = [
        name
        for name, connection in config.connections.items()
        if isinstance(connection.auth, OAuth2AuthConfig)
    ]
    if not names:
        return {}
    vault = Vault.open(store.engine)
    chosen = accounts or {}
    sources: dict[str, TokenSource] = {}
    for name in names:
        auth = config.connections[name].auth
        assert isinstance(auth, OAuth2AuthConfig)
        account = chosen.get(name, "")
        seed = seed_token(auth) if not account else None
        sources[name] = VaultTokenSource(store, vault, name, account=account, seed=seed)
    return sources


def _mark(seed: OAuthToken | None) -> str | None:
    if seed is None:
        return None
    material = f"{seed.access_token}\0{seed.refresh_token or ''}".encode()
    return hashlib.sha256(material).hexdigest()[:32]
