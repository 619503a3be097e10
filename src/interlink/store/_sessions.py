"""The dashboard's sessions: a browser signed in with an API key, kept as a hash.

```python
token = start_session(store.engine, key.id)    # the cookie's value; only its hash is kept
session = find_session(store.engine, token)     # DashboardSession, or None
end_session(store.engine, token)                # signed out
```

A session's token has 256 random bits, so its SHA-256 is stored without a salt and a copy
of the database signs nobody in. A session ends after `SESSION_IDLE` without a request,
`SESSION_LIFETIME` after it started, or at once when the API key it signed in with is
revoked: `find_session` reads the key with the session on every request, as the API reads
a key on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from interlink.types import WallClock

from ._apikeys import ApiKey, _row_to_key
from ._schema import api_keys, dashboard_sessions

__all__ = [
    "SESSION_IDLE",
    "SESSION_LIFETIME",
    "DashboardSession",
    "end_session",
    "find_session",
    "prune_sessions",
    "start_session",
]

SESSION_IDLE = 12 * 3600.0
"""Seconds without a request after which a session ends."""
SESSION_LIFETIME = 7 * 86400.0
"""Seconds after signing in after which a session ends, however busy."""
_SEEN_RESOLUTION = 60.0
"""`seen_at` is written at most this often: most page views write nothing."""
_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class DashboardSession:
    """A live session: the API key it acts with, when it started and was last seen."""

    key: ApiKey
    created_at: float
    seen_at: float


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(engine: sa.Engine, key_id: int, *, clock: WallClock = time.time) -> str:
    """Start a session for the API key `key_id`; the token returned is the only copy."""
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    now = clock()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(dashboard_sessions).values(
                token_hash=_hash(token), key_id=key_id, created_at=now, seen_at=now
            )
        )
    return token


def find_session(
    engine: sa.Engine,
    token: str,
    *,
    idle: float = SESSION_IDLE,
    lifetime: float = SESSION_LIFETIME,
    clock: WallClock = time.time,
) -> DashboardSession | None:
    """The session `token` belongs to, or None when there is none, it has expired, or its
    key was revoked (an ended session's row is deleted on the way)."""
    if not token or len(token) > 200:
        return None
    digest = _hash(token)
    query = (
        sa.select(
            api_keys,
            dashboard_sessions.c.token_hash,
            dashboard_sessions.c.created_at.label("started_at"),
            dashboard_sessions.c.seen_at,
        )
        .select_from(dashboard_sessions)
        .join(api_keys, api_keys.c.id == dashboard_sessions.c.key_id, isouter=True)
        .where(dashboard_sessions.c.token_hash == digest)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None or not hmac.compare_digest(str(row.token_hash), digest):
        return None
    now = clock()
    alive = (
        row.id is not None
        and row.revoked_at is None
        and now < float(row.started_at) + lifetime
        and now < float(row.seen_at) + idle
    )
    if not alive:
        end_session(engine, token)
        return None
    seen = float(row.seen_at)
    if now - seen >= _SEEN_RESOLUTION:
        with engine.begin() as conn:
            conn.execute(
                sa.update(dashboard_sessions)
                .where(dashboard_sessions.c.token_hash == digest)
                .values(seen_at=now)
            )
        seen = now
    return DashboardSession(key=_row_to_key(row), created_at=float(row.started_at), seen_at=seen)


def end_session(engine: sa.Engine, token: str) -> bool:
    """Forget the session `token` belongs to; False when there was none."""
    with engine.begin() as conn:
        gone = conn.execute(
            sa.delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == _hash(token))
        ).rowcount
    return bool(gone)


def prune_sessions(
    engine: sa.Engine,
    *,
    idle: float = SESSION_IDLE,
    lifetime: float = SESSION_LIFETIME,
    clock: WallClock = time.time,
) -> int:
    """Delete the sessions that have ended (expired, or their key revoked or gone); how many."""
    now = clock()
    live_keys = sa.select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None))
    with engine.begin() as conn:
        return conn.execute(
            sa.delete(dashboard_sessions).where(
                sa.or_(
                    dashboard_sessions.c.created_at <= now - lifetime,
                    dashboard_sessions.c.seen_at <= now - idle,
                    dashboard_sessions.c.key_id.not_in(live_keys.scalar_subquery()),
                )
            )
        ).rowcount
