"""Small shared types: aliases and the Protocols lower layers use to ask upper layers for help.

A lower layer that needs a service from a higher one declares a Protocol here and the higher
layer implements it: `interlink.http` takes any `TokenSource`, and the token vault of
`interlink.oauth` provides one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from interlink.errors import OAuthError

__all__ = [
    "JSON",
    "Clock",
    "OAuthToken",
    "SharedTokenSource",
    "Sleep",
    "TokenSource",
    "WallClock",
]

JSON: TypeAlias = dict[str, Any] | list[Any] | str | int | float | bool | None

Clock: TypeAlias = Callable[[], float]
"""Monotonic seconds, `time.monotonic` by default; tests inject a fake one."""

WallClock: TypeAlias = Callable[[], float]
"""Seconds since the epoch, `time.time` by default; for dates and epoch reset headers."""

Sleep: TypeAlias = Callable[[float], Awaitable[None]]
"""`asyncio.sleep` by default; tests inject one that advances a fake clock."""


@dataclass(frozen=True, slots=True)
class OAuthToken:
    """An OAuth2 token set as issued by a token endpoint; its repr never shows the secrets."""

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    """Epoch seconds after which the access token is no longer accepted, when known."""
    token_type: str = "Bearer"
    scope: str | None = None

    def __repr__(self) -> str:
        refresh = "'**********'" if self.refresh_token else "None"
        return (
            f"OAuthToken(access_token='**********', refresh_token={refresh}, "
            f"expires_at={self.expires_at!r}, token_type={self.token_type!r}, "
            f"scope={self.scope!r})"
        )

    __str__ = __repr__


class TokenSource(Protocol):
    """Where the `oauth2` auth of a connection gets and keeps its tokens.

    Implement `load` to return the stored token (or None when the account is not connected)
    and `save` to persist a refreshed one. interlink calls `save` before it uses a new
    access token, so a rotated refresh token is never lost.
    """

    async def load(self) -> OAuthToken | None: ...

    async def save(self, token: OAuthToken) -> None: ...


@runtime_checkable
class SharedTokenSource(TokenSource, Protocol):
    """A `TokenSource` that several processes use at once (the vault).

    `refreshing()` is held while a token is refreshed, across processes: the one that
    gets it first refreshes, the others find the new token when they get it and use that
    (a rotating provider refuses a refresh token used twice, and revokes the grant).
    `refresh_failed(error)` hears of a refresh the token endpoint refused, so the account
    can be marked for reconnecting.
    """

    def refreshing(self) -> AbstractAsyncContextManager[None]: ...

    async def refresh_failed(self, error: OAuthError) -> None: ...
