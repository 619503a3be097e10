"""Disconnecting an account: revoke its grant at the provider (RFC 7009), then forget it.

```python
done = await disconnect(config, store, "crm", "acct_1001")
done.revoked      # "refresh_token" | "access_token" | None (no revocation endpoint)
done.note         # what is still up to you, if anything
```

The stored refresh token is revoked, which revokes the whole grant and its access tokens
(RFC 7009 section 2.1); without a refresh token, the access token. The request is a form
POST of `token` and `token_type_hint` to the connection's `revocation_url` with the
client's credentials per its `auth_method`; they go to that URL only, and redirects are
not followed. A 200 is success even for a token the provider does not know any more
(section 2.2). Then the token and the account's switch-off are deleted in one transaction.

A revocation that fails (no answer, 5xx, an error) keeps the token, so that it can be
tried again: RevocationError, unless `forget_anyway`. A provider without a revocation
endpoint (Stripe Connect, GitHub, Facebook have none in RFC 7009's sense) gets the token
forgotten and a note saying how the grant is removed on its side.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from interlink.config import InterlinkConfig, OAuth2AuthConfig
from interlink.errors import ConfigError, RevocationError
from interlink.http import Redactor, TokenEndpoint, endpoint_url
from interlink.store import Store, StoredToken, delete_token, enable, list_tokens, load_token

from ._switching import AccountNotConnectedError, check_target
from ._token_source import refreshing
from ._vault import Vault

__all__ = ["PROVIDER_SIDE_REMOVAL", "Disconnected", "RevocationError", "disconnect"]

TokenKind = Literal["refresh_token", "access_token"]

REVOCATION_TIMEOUT = 15.0
"""Seconds the revocation request may take (per connect, read and write)."""

PROVIDER_SIDE_REMOVAL: dict[str, str] = {
    "stripe": (
        "Stripe Connect has no RFC 7009 endpoint: deauthorize the account with POST "
        "https://connect.stripe.com/oauth/deauthorize (client_id and stripe_user_id, "
        "your secret key as auth), or in the Stripe Dashboard"
    ),
    "github": (
        "GitHub has no RFC 7009 endpoint: delete the grant with DELETE "
        "https://api.github.com/applications/{client_id}/grant (basic auth with the "
        "app's client id and secret), or the user revokes it under Settings > Applications"
    ),
    "facebook": (
        "Facebook has no RFC 7009 endpoint: remove the app's permissions with DELETE "
        "https://graph.facebook.com/me/permissions (with the user's token), or the user "
        "removes the app under Settings > Apps and Websites"
    ),
}
"""How a preset's provider removes a grant, for the note after forgetting its token."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """What `disconnect` did: which token the provider revoked (None: none was), and what
    is still left to do by hand (`note`)."""

    connection: str
    account: str
    revoked: TokenKind | None
    forgotten: bool
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "account": self.account,
            "revoked": self.revoked,
            "forgotten": self.forgotten,
            "note": self.note,
        }


def _oauth2(config: InterlinkConfig, connection: str, account: str) -> OAuth2AuthConfig:
    auth = config.connections[connection].auth
    if not isinstance(auth, OAuth2AuthConfig):
        raise AccountNotConnectedError(
            connection,
            account,
            f"connection {connection!r} uses {auth.type} auth: it has no connected accounts "
            "to disconnect (remove its credentials from interlink.yaml instead)",
        )
    return auth


def _stored_token(store: Store, connection: str, account: str) -> StoredToken:
    stored = load_token(store.engine, connection, account)
    if stored is None:
        connected = [info.account for info in list_tokens(store.engine, connection)]
        named = ", ".join(repr(name) if name else "(default)" for name in connected)
        which = f"account {account!r}" if account else "the default account"
        raise AccountNotConnectedError(
            connection,
            account,
            f"{which} is not connected to {connection!r}: no token is stored "
            f"(connected: {named or 'none'})",
        )
    return stored


async def _revoke(
    auth: OAuth2AuthConfig,
    url: str,
    tokens: list[tuple[TokenKind, str]],
    *,
    connection: str,
    account: str,
    transport: httpx.AsyncBaseTransport | None,
) -> TokenKind:
    """POST each token in turn until the provider takes one; the kind it revoked."""
    secret = auth.client_secret.get_secret_value() if auth.client_secret else None
    redactor = Redactor()
    for _, token in tokens:
        redactor.add_secret(token)
    endpoint = TokenEndpoint(
        url, auth.client_id, secret, auth_method=auth.auth_method, redactor=redactor
    )
    problem = "no token to revoke"
    status: int | None = None
    refused_refresh = False
    async with httpx.AsyncClient(
        transport=transport, timeout=REVOCATION_TIMEOUT, follow_redirects=False
    ) as client:
        for kind, token in tokens:
            request = endpoint.request({"token": token, "token_type_hint": kind})
            try:
                response = await client.send(request)
            except httpx.HTTPError as exc:
                raise RevocationError(
                    connection,
                    account,
                    f"{redactor.url(url)} could not be reached: {type(exc).__name__}",
                ) from None
            # RFC 7009 section 2.2 answers 200 (also for a token it does not know); any
            # 2xx is taken as done. A redirect is not followed: the credentials stay here.
            if 200 <= response.status_code < 300:
                if refused_refresh:
                    # Only the access token went: the grant may well live on at the
                    # provider, and the refresh token is what would use it.
                    raise RevocationError(
                        connection,
                        account,
                        f"{redactor.url(url)} would not revoke the refresh token "
                        "(unsupported_token_type); only the access token was revoked, and "
                        "the grant may still be valid there",
                    )
                return kind
            status = response.status_code
            error, description = _oauth_error(response)
            problem = f"{redactor.url(url)} answered {status}"
            if error:
                problem += f" {redactor.text(error)}"
                problem += f": {redactor.text(description)}" if description else ""
            # RFC 7009 section 2.2.1: this kind cannot be revoked here; try the next.
            if error != "unsupported_token_type":
                break
            refused_refresh = refused_refresh or kind == "refresh_token"
    raise RevocationError(connection, account, problem, status_code=status)


def _oauth_error(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error, description = body.get("error"), body.get("error_description")
    return (
        error[:100] if isinstance(error, str) else None,
        " ".join(description.split())[:300] if isinstance(description, str) else None,
    )


def _prepare(
    config: InterlinkConfig,
    store: Store,
    connection: str,
    account: str,
    *,
    forget_anyway: bool,
) -> tuple[OAuth2AuthConfig, int, dict[str, Any] | ConfigError]:
    """Check the connection and account, and read the stored token set (only when there
    is somewhere to revoke it). A vault that cannot read it is an error, or with
    `forget_anyway` the reason the token is forgotten unrevoked."""
    check_target(config, store.engine, connection, account)
    auth = _oauth2(config, connection, account)
    stored = _stored_token(store, connection, account)
    if auth.revocation_url is None:
        return auth, stored.version, {}
    try:
        data = Vault.open(store.engine).decrypt_json(stored.ciphertext, where=stored.where)
    except ConfigError as exc:
        if not forget_anyway:
            raise
        return auth, stored.version, exc
    return auth, stored.version, data


def _forgotten_anyway(problem: str) -> str:
    return (
        f"not revoked ({problem}); forgotten anyway: the grant stays valid at the provider "
        "until it expires or is removed there"
    )


def _forget(store: Store, connection: str, account: str, version: int) -> bool:
    """Delete the token that was revoked; False (nothing changed) when the account was
    connected again meanwhile: that newer grant is kept."""
    with store.transaction() as conn:
        if not delete_token(conn, connection, account, expected_version=version):
            return False
        if account:
            # The account's own switch-off goes with it; the connection's own (account
            # '') is the connection's, and stays.
            enable(conn, connection, account)
    return True


async def disconnect(
    config: InterlinkConfig,
    store: Store,
    connection: str,
    account: str = "",
    *,
    forget_anyway: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Disconnected:
    """Revoke `account`'s grant at the connection's `revocation_url` (when it has one) and
    forget its token. RevocationError when the provider did not confirm, unless
    `forget_anyway`; UnknownConnectionError / AccountNotConnectedError (ConfigErrors) for a
    connection or account that is not there."""
    # Under the account's refresh lock, as a refresh is: one under way in any process ends
    # first (what it stores is what is revoked and forgotten here), and none starts until
    # the token is gone, so a refresh cannot bring a disconnected account back.
    async with refreshing(store, connection, account):
        return await _disconnect(config, store, connection, account, forget_anyway, transport)


async def _disconnect(
    config: InterlinkConfig,
    store: Store,
    connection: str,
    account: str,
    forget_anyway: bool,
    transport: httpx.AsyncBaseTransport | None,
) -> Disconnected:
    auth, version, data = await asyncio.to_thread(
        _prepare, config, store, connection, account, forget_anyway=forget_anyway
    )
    notes: list[str] = []
    revoked: TokenKind | None = None
    if auth.revocation_url is None:
        notes.append(
            PROVIDER_SIDE_REMOVAL.get(auth.preset or "")
            or "the connection has no revocation_url: the grant stays valid at the provider "
            "until it expires or is removed there (in the provider's settings for your app)"
        )
    elif isinstance(data, ConfigError):
        notes.append(_forgotten_anyway(str(data)))  # the vault could not read it
    else:
        tokens = _tokens(data)
        if not tokens:
            notes.append("the stored token set holds no token to revoke")
        else:
            try:
                revoked = await _revoke(
                    auth,
                    endpoint_url(auth.revocation_url, config.connections[connection].base_url),
                    tokens,
                    connection=connection,
                    account=account,
                    transport=transport,
                )
            except RevocationError as exc:
                if not forget_anyway:
                    raise
                notes.append(_forgotten_anyway(exc.problem))
    if not await asyncio.to_thread(_forget, store, connection, account, version):
        notes.append(
            "the account was connected again while it was being disconnected: the new "
            "token is kept (what was revoked was the earlier grant)"
        )
        return Disconnected(connection, account, revoked, forgotten=False, note="; ".join(notes))
    if not account and (auth.refresh_token is not None or auth.access_token is not None):
        notes.append(
            f"interlink.yaml still gives connection {connection!r} a token: remove it, or "
            "the next run starts from it again"
        )
    return Disconnected(connection, account, revoked, forgotten=True, note="; ".join(notes) or None)


def _tokens(data: dict[str, Any]) -> list[tuple[TokenKind, str]]:
    found: list[tuple[TokenKind, str]] = []
    refresh, access = data.get("refresh_token"), data.get("access_token")
    if isinstance(refresh, str) and refresh:
        found.append(("refresh_token", refresh))
    if isinstance(access, str) and access:
        found.append(("access_token", access))
    return found
