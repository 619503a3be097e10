"""Who is looking at a page: the API key a session signed in with, and its forms' token."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from interlink.store import ApiKey

__all__ = ["Viewer", "csrf_token"]

_CSRF_PURPOSE = b"interlink dashboard forms"


def csrf_token(session_token: str) -> str:
    """The token every form of a session carries: an HMAC of the session's own token, so
    nothing more is stored, and a page (which shows it) gives nobody the session."""
    return hmac.new(session_token.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in browser: its API key (never the key's secret) and its CSRF token."""

    key: ApiKey
    csrf: str

    @property
    def can_write(self) -> bool:
        """Whether the key may act (`write` or `admin`): only then are buttons shown."""
        return self.key.allows("write")
