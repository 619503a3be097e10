"""API keys for the jobs API: created once, stored only as a SHA-256 hash, revocable.

```python
created = create_api_key(store.engine, "ci", "write")
print(created.secret)                    # il_3kq9x2mf_... shown once, never stored
key = verify_api_key(store.engine, created.secret)   # ApiKey, or None if wrong/revoked
revoke_api_key(store.engine, key.id)
```

A key is `il_<8-char prefix>_<43 letters and digits>`, 256 random bits in the secret. Only the hash
of the whole key is kept, so a copy of the database gives nobody a working key.

`verify_api_key` looks a key up by its hash on every call. The API server asks an
`ApiKeyCache` instead, which keeps a verified key for `KEY_CACHE_SECONDS`: a key revoked
in the same process (`revoke_api_key`) fails on its very next request, one revoked by
another process (`interlink apikeys revoke`) within `KEY_CACHE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal, get_args

import sqlalchemy as sa

from interlink.types import WallClock

from ._schema import api_keys

__all__ = [
    "KEY_CACHE_SECONDS",
    "SCOPES",
    "ApiKeyCache",
    "ApiKey",
    "ApiKeyScope",
    "CreatedApiKey",
    "create_api_key",
    "hash_api_key",
    "list_api_keys",
    "revoke_api_key",
    "verify_api_key",
]

ApiKeyScope = Literal["read", "write", "admin"]
SCOPES: tuple[ApiKeyScope, ...] = get_args(ApiKeyScope)
"""From least to most: each scope allows everything the ones before it allow."""

_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_SECRET_ALPHABET = _PREFIX_ALPHABET + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# 43 characters of 62 carry 256.03 bits; letters and digits only, so a double-click selects
# the whole key and `key.split("_")` gives back its three parts.
_SECRET_LENGTH = 43
# last_used_at is written at most this often per key: a read-only request stays read-only.
_LAST_USED_RESOLUTION = 60.0
_MAX_ID = 2**63 - 1

KEY_CACHE_SECONDS = 2.0
"""How long an `ApiKeyCache` trusts a verified key: the longest a key revoked by another
process keeps working."""

# Bumped by every revoke_api_key in this process once its write is committed: a cache
# entry made before that trusts nothing.
_revocations = 0


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key, without its secret (which only its creator ever saw)."""

    id: int
    name: str
    prefix: str
    scope: ApiKeyScope
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, needed: ApiKeyScope) -> bool:
        """True when this key's scope includes `needed` (admin > write > read)."""
        return SCOPES.index(self.scope) >= SCOPES.index(needed)


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    """A key just created: `secret` is the whole key, to be shown to the user once."""

    key: ApiKey
    secret: str

    def __repr__(self) -> str:
        return f"CreatedApiKey(key={self.key!r}, secret='**********')"


def hash_api_key(secret: str) -> str:
    """The SHA-256 hex digest stored for a key (the key has 256 random bits: no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _row_to_key(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    mapping = row._mapping
    return ApiKey(
        id=int(mapping["id"]),
        name=str(mapping["name"]),
        prefix=str(mapping["prefix"]),
        scope=mapping["scope"],
        created_at=float(mapping["created_at"]),
        last_used_at=mapping["last_used_at"],
        revoked_at=mapping["revoked_at"],
    )


def create_api_key(
    engine: sa.Engine, name: str, scope: ApiKeyScope = "read", *, clock: WallClock = time.time
) -> CreatedApiKey:
    """Make a new key; the returned `secret` is the only copy of it anywhere."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
    if not name.strip() or len(name) > 200:
        raise ValueError("a key's name is 1 to 200 characters")
    short = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    body = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(_SECRET_LENGTH))
    secret = f"il_{short}_{body}"
    prefix = f"il_{short}"
    now = clock()
    with engine.begin() as conn:
        inserted = conn.execute(
            sa.insert(api_keys).values(
                name=name,
                prefix=prefix,
                key_hash=hash_api_key(secret),
                scope=scope,
                created_at=now,
            )
        ).inserted_primary_key
    assert inserted is not None
    key = ApiKey(id=int(inserted[0]), name=name, prefix=prefix, scope=scope, created_at=now)
    return CreatedApiKey(key, secret)


def verify_api_key(
    engine: sa.Engine, secret: str, *, clock: WallClock = time.time
) -> ApiKey | None:
    """The key `secret` belongs to, or None when it is unknown or revoked.

    One indexed lookup by hash; `last_used_at` is updated only when it is more than a
    minute old, so most requests write nothing.
    """
    if not secret.startswith("il_") or len(secret) > 200:
        return None
    digest = hash_api_key(secret)
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == digest)).first()
    # The lookup already matched the hash; comparing again in constant time costs nothing
    # and keeps a timing difference out of any code path that handles the digest.
    if row is None or not hmac.compare_digest(str(row.key_hash), digest):
        return None
    key = _row_to_key(row)
    if key.revoked:
        return None
    now = clock()
    if key.last_used_at is None or now - key.last_used_at >= _LAST_USED_RESOLUTION:
        with engine.begin() as conn:
            conn.execute(
                sa.update(api_keys)
                .where(
                    api_keys.c.id == key.id,
                    sa.or_(
                        api_keys.c.last_used_at.is_(None),
                        api_keys.c.last_used_at < now - _LAST_USED_RESOLUTION,
                    ),
                )
                .values(last_used_at=now)
            )
    return key


def list_api_keys(engine: sa.Engine, *, include_revoked: bool = True) -> list[ApiKey]:
    """Every key, oldest first."""
    query = sa.select(api_keys).order_by(api_keys.c.id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    with engine.connect() as conn:
        return [_row_to_key(row) for row in conn.execute(query)]


def revoke_api_key(
    engine: sa.Engine, key_id: int, *, clock: WallClock = time.time
) -> ApiKey | None:
    """Revoke a key from the next request on; None when there is no such key.

    Revoking a revoked key changes nothing (its first revocation time stays).
    """
    global _revocations
    if not 1 <= key_id <= _MAX_ID:
        return None
    with engine.begin() as conn:
        conn.execute(
            sa.update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=clock())
        )
        row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
    # After the commit, not before: a lookup that began before this line read the key
    # before it was revoked (or may have), and its cache entry, made under the old count,
    # is thrown away; a lookup that begins after it sees the revocation in the database.
    _revocations += 1
    return _row_to_key(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class _Cached:
    key: ApiKey
    until: float
    revocations: int


class ApiKeyCache:
    """Verified keys, remembered by their hash for `ttl` seconds (at most `size` of them).

    ```python
    cache = ApiKeyCache(store.engine)
    key = cache.cached(secret)          # no I/O: the key, or None when it must be verified
    key = key or cache.verify(secret)   # one lookup (in a thread: it blocks), then cached
    ```

    Only keys that verified are kept; a wrong key is looked up every time (and the server
    throttles those per address). A revocation in this process empties the cache at once;
    one made elsewhere is seen within `ttl` seconds.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        ttl: float = KEY_CACHE_SECONDS,
        size: int = 1024,
        clock: WallClock = time.monotonic,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._keys: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, secret: str) -> ApiKey | None:
        """The key for `secret` when it was verified less than `ttl` seconds ago."""
        if self.ttl <= 0:
            return None
        digest = hash_api_key(secret)
        found = self._keys.get(digest)
        if found is None:
            return None
        if found.revocations != _revocations or self.clock() >= found.until:
            with self._lock:
                self._keys.pop(digest, None)
            return None
        return found.key

    def verify(self, secret: str) -> ApiKey | None:
        """`verify_api_key`, remembering a key that verified."""
        before = _revocations
        key = verify_api_key(self.engine, secret)
        if key is not None and self.ttl > 0:
            entry = _Cached(key, self.clock() + self.ttl, before)
            with self._lock:
                self._keys[hash_api_key(secret)] = entry
                while len(self._keys) > self.size:
                    self._keys.popitem(last=False)
        return key
