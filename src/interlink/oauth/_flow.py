"""The authorization-code flow that connects an account to an `oauth2` connection.

```python
flows = ConnectFlows(config, store)
ticket = flows.issue("crm", account="acme")        # a single-use link for a browser
url = flows.start("crm", ticket.ticket, session)     # -> the provider's authorize URL
connected = await flows.finish("crm", callback_query, session)
```

Done to RFC 9700: the `state` is single use, expires, is bound to the browser session
that started the flow (a cookie) and to its connection; PKCE S256 on every request; the
redirect URI is interlink.yaml's, never the request's. The ticket is how a signed-in
caller (an API key, the dashboard, `interlink connect`) hands a browser the right to start
one flow, without putting an API key in a URL. Only hashes of the ticket, state and
session are stored; the PKCE verifier is vault ciphertext. The code is redeemed with
authlib's client; the token set is saved in the vault under the account the caller named,
or the one the provider's answer names (`account_key`), or the default account.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from interlink.config import ACCOUNT_NAME, InterlinkConfig, OAuth2AuthConfig
from interlink.errors import ConfigError, InterlinkError
from interlink.http import endpoint_url
from interlink.store import (
    FlowRow,
    Store,
    add_flow,
    claim_flow,
    finish_flow,
    flow_by_state,
    get_flow,
    prune_flows,
    start_flow,
)
from interlink.types import OAuthToken

from ._token_source import VaultTokenSource, seed_token
from ._vault import Vault

__all__ = [
    "FLOW_LIFETIME",
    "ConnectError",
    "ConnectFlows",
    "Connected",
    "Ticket",
    "connect_settings",
    "start_url",
]

log = logging.getLogger("interlink.oauth")

FLOW_LIFETIME = 600.0
"""Seconds a ticket may wait to be opened, and a started flow for its callback."""
FLOWS_KEPT = 7 * 86400.0
"""Seconds a finished or abandoned flow stays listed (`/connections/{c}/flows/{id}`)."""
_TOKEN_TIMEOUT = 30.0

_PROVIDER_ERRORS = {
    "access_denied": "Access was declined on the provider's consent page.",
    "invalid_scope": "The provider refused the requested scope; check auth.scope.",
    "unauthorized_client": "The provider does not let this client use the code grant.",
    "unsupported_response_type": "The provider does not offer the authorization-code grant.",
    "server_error": "The provider failed while asking for consent; try again.",
    "temporarily_unavailable": "The provider is unavailable for now; try again later.",
    "invalid_request": "The provider refused the authorize request as malformed.",
}


class ConnectError(InterlinkError):
    """A connect flow could not go on: `error` is a short code (an RFC 6749 one such as
    `access_denied`, or interlink's: `invalid_state`, `expired`, `session_mismatch`...),
    `status` the HTTP status a browser gets, and `str()` the sentence it reads."""

    code = "CONNECT_FAILED"

    def __init__(self, error: str, message: str, *, status: int = 400) -> None:
        self.error = error
        self.status = status
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A link that starts one flow: open `url` (or `/connect/{connection}/authorize?
    ticket=...`) in a browser before `expires_at`."""

    flow_id: str
    connection: str
    account: str
    ticket: str
    url: str | None
    """The server's start URL, derived from the redirect URI (None when that does not
    end in `/connect/{connection}/callback`)."""
    expires_at: float


@dataclass(frozen=True, slots=True)
class Connected:
    """A flow that stored a token set."""

    flow_id: str
    connection: str
    account: str
    scope: str | None
    expires_at: float | None


def connect_settings(config: InterlinkConfig, connection: str) -> OAuth2AuthConfig:
    """The `oauth2` settings of a connection that can be connected in a browser, or a
    ConfigError naming the key that is missing."""
    where = f"connections.{connection}"
    settings = config.connections.get(connection)
    if settings is None:
        known = ", ".join(config.connections) or "none defined"
        raise ConfigError(
            f"no connection named {connection!r} (connections: {known})", key="connections"
        )
    auth = settings.auth
    if not isinstance(auth, OAuth2AuthConfig):
        raise ConfigError(
            f"{where}: only auth.type oauth2 connections are connected in a browser "
            f"(this one is {auth.type})",
            key=f"{where}.auth.type",
        )
    for key in ("authorize_url", "redirect_uri"):
        if getattr(auth, key) is None:
            raise ConfigError(
                f"{where}.auth.{key}: needed to connect an account in a browser "
                "(or set auth.preset)",
                key=f"{where}.auth.{key}",
            )
    return auth


def start_url(auth: OAuth2AuthConfig, connection: str) -> str | None:
    """interlink's `/connect/{connection}/authorize` beside the configured callback, or
    None when the redirect URI is not interlink's callback path (a CLI-only loopback)."""
    assert auth.redirect_uri is not None
    parts = urlsplit(auth.redirect_uri)
    suffix = f"/connect/{connection}/callback"
    if not parts.path.endswith(suffix):
        return None
    path = parts.path[: -len("callback")] + "authorize"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class ConnectFlows:
    """Issue, start and finish "connect your account" flows on one database."""

    def __init__(
        self,
        config: InterlinkConfig,
        store: Store,
        *,
        vault: Vault | None = None,
        lifetime: float = FLOW_LIFETIME,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.lifetime = lifetime
        self._vault = vault
        self._transport = transport

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault.open(self.store.engine)
        return self._vault

    # -- the steps ------------------------------------------------------------------------

    def issue(self, connection: str, *, account: str = "", created_by: str | None = None) -> Ticket:
        """A single-use ticket that lets one browser start a flow for `account` ('': the
        provider's answer names it, or the default account)."""
        auth = connect_settings(self.config, connection)
        _check_account(account)
        ticket = secrets.token_urlsafe(32)
        now = time.time()
        flow = FlowRow(
            id=_flow_id(),
            connection=connection,
            account=account,
            redirect_uri=str(auth.redirect_uri),
            status="ticket",
            created_at=now,
            expires_at=now + self.lifetime,
            ticket_hash=_hash(ticket),
            created_by=created_by,
        )
        with self.store.transaction() as conn:
            prune_flows(conn, older_than=now - FLOWS_KEPT)
            add_flow(conn, flow)
        base = start_url(auth, connection)
        url = f"{base}?ticket={ticket}" if base is not None else None
        return Ticket(flow.id, connection, account, ticket, url, flow.expires_at)

    def start(self, connection: str, ticket: str, session: str) -> str:
        """Use a ticket: the flow is bound to `session` (the browser's cookie) and the
        provider's authorize URL to send the browser to is returned."""
        auth = connect_settings(self.config, connection)
        if not ticket:
            raise ConnectError(
                "invalid_ticket",
                "This link has no ticket. Ask for a new connect link.",
            )
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        now = time.time()
        with self.store.transaction() as conn:
            flow = start_flow(
                conn,
                connection,
                _hash(ticket),
                state_hash=_hash(state),
                session_hash=_hash(session),
                verifier=self.vault.encrypt(verifier),
                expires_at=now + self.lifetime,
                now=now,
            )
        if flow is None:
            raise ConnectError(
                "invalid_ticket",
                "This connect link is unknown, was used already or has expired. Ask for a new one.",
            )
        return _authorize_url(auth, state, verifier, flow.account)

    def begin(
        self,
        connection: str,
        session: str,
        *,
        account: str = "",
        created_by: str | None = None,
    ) -> tuple[str, str]:
        """A started flow without a ticket (the caller is the browser's own process, as
        `interlink connect` is): `(flow id, authorize URL)`."""
        issued = self.issue(connection, account=account, created_by=created_by)
        return issued.flow_id, self.start(connection, issued.ticket, session)

    async def finish(
        self, connection: str, params: Mapping[str, str], session: str | None
    ) -> Connected:
        """Handle the provider's redirect back (`params`: its query) in the browser
        session `session`: check the state, redeem the code, store the token set.
        ConnectError says what went wrong; the flow is then `failed`."""
        auth = connect_settings(self.config, connection)
        flow = await asyncio.to_thread(self._flow_for, connection, params, session)
        try:
            return await self._redeem(auth, flow, params)
        except BaseException as exc:
            message = str(exc) if isinstance(exc, InterlinkError) else type(exc).__name__
            await asyncio.shield(asyncio.to_thread(self._end, flow.id, "failed", error=message))
            raise

    def get(self, flow_id: str) -> FlowRow | None:
        return get_flow(self.store.engine, flow_id)

    def _end(
        self,
        flow_id: str,
        status: Literal["connected", "failed"],
        *,
        account: str | None = None,
        error: str | None = None,
    ) -> None:
        with self.store.transaction() as conn:
            finish_flow(conn, flow_id, status, connected_account=account, error=error)

    # -- inside -----------------------------------------------------------------------------

    def _flow_for(self, connection: str, params: Mapping[str, str], session: str | None) -> FlowRow:
        """The flow this callback may finish, claimed (`exchanging`), or ConnectError."""
        state = params.get("state") or ""
        if not state:
            raise ConnectError(
                "invalid_state", "The provider's answer has no state; start connecting again."
            )
        flow = flow_by_state(self.store.engine, _hash(state))
        if flow is None:
            raise ConnectError(
                "invalid_state",
                "This answer's state is unknown: it was never issued here. Start connecting again.",
            )
        refusal: ConnectError | None = None
        if flow.status != "started":
            # Ended (or being redeemed): nothing about it changes, whoever sends it again.
            raise ConnectError(
                "invalid_state",
                "This answer was used already (a state is good for one callback). Start "
                "connecting again if the account is not connected.",
            )
        if flow.connection != connection:
            refusal = ConnectError(
                "invalid_state",
                f"This answer belongs to another connection than {connection!r}; it is "
                "refused, and that connect attempt is void. Start connecting again.",
            )
        elif session is None or not hmac.compare_digest(flow.session_hash or "", _hash(session)):
            refusal = ConnectError(
                "session_mismatch",
                "This answer reached a different browser session than the one that "
                "started connecting; it is refused. Start again in one browser.",
            )
        elif flow.expires_at <= time.time():
            refusal = ConnectError(
                "expired",
                f"This connect attempt expired ({self.lifetime:.0f} s after it started). "
                "Start connecting again.",
            )
        with self.store.transaction() as conn:
            if refusal is None and claim_flow(conn, flow.id):
                return flow
            if refusal is None:
                refusal = ConnectError(
                    "invalid_state",
                    "This answer was used already (a state is good for one callback).",
                )
            else:
                finish_flow(conn, flow.id, "failed", error=str(refusal), only_open=True)
        raise refusal

    async def _redeem(
        self, auth: OAuth2AuthConfig, flow: FlowRow, params: Mapping[str, str]
    ) -> Connected:
        error = params.get("error")
        if error:
            text = _PROVIDER_ERRORS.get(error, "The provider refused to grant access.")
            description = (params.get("error_description") or "")[:300]
            raise ConnectError(
                error, f"{text} ({error}{': ' + description if description else ''})"
            )
        code = params.get("code") or ""
        if not code:
            raise ConnectError("invalid_request", "The provider's answer has no code.")
        assert flow.verifier is not None
        verifier = self.vault.decrypt_text(flow.verifier, where=f"flow {flow.id}")
        base_url = self.config.connections[flow.connection].base_url
        token_url = endpoint_url(auth.token_url, base_url)
        answer = await self._exchange(auth, token_url, flow, code, verifier)
        account = _account_of(auth, flow, answer)
        token = _token(answer)
        source = VaultTokenSource(
            self.store,
            self.vault,
            flow.connection,
            account=account,
            # The default account's new token set supersedes interlink.yaml's tokens.
            seed=seed_token(auth) if not account else None,
        )
        raw = {k: v for k, v in answer.items() if k not in _SECRET_FIELDS}
        # Under the account's refresh lock: a refresh of the old grant under way in any
        # process ends first (its save or its needs_reauth mark), then the new set wins;
        # a refresh after this one reloads the new set first.
        async with source.refreshing():
            if flow.account and auth.account_key is not None:
                kept = await asyncio.to_thread(source.stored_answer)
                _check_same_account(auth.account_key, flow.account, kept, answer)
            await asyncio.to_thread(source.save_now, token, raw=raw)
        await asyncio.to_thread(self._end, flow.id, "connected", account=account)
        log.info("connected connection %r account %r (flow %s)", flow.connection, account, flow.id)
        return Connected(flow.id, flow.connection, account, token.scope, token.expires_at)

    async def _exchange(
        self, auth: OAuth2AuthConfig, token_url: str, flow: FlowRow, code: str, verifier: str
    ) -> dict[str, Any]:
        from authlib.integrations.base_client.errors import OAuthError as AuthlibError

        with warnings.catch_warnings():
            # authlib 1.9 warns that its httpx integration will move to another package.
            warnings.simplefilter("ignore", DeprecationWarning)
            from authlib.integrations.httpx_client import AsyncOAuth2Client

        secret = auth.client_secret.get_secret_value() if auth.client_secret else None
        options: dict[str, Any] = {"timeout": _TOKEN_TIMEOUT, "follow_redirects": False}
        if self._transport is not None:
            options["transport"] = self._transport
        client = AsyncOAuth2Client(
            client_id=auth.client_id,
            client_secret=secret,
            token_endpoint_auth_method=auth.auth_method if secret else "none",
            **options,
        )
        client.register_compliance_hook("access_token_response", _whole_seconds)
        extra = {"code_verifier": verifier} if auth.pkce else {}
        try:
            async with client:
                answer = await client.fetch_token(
                    token_url,
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=flow.redirect_uri,
                    **extra,
                )
        except AuthlibError as exc:
            description = f": {exc.description}" if exc.description else ""
            raise ConnectError(
                str(exc.error or "oauth_error"),
                f"The token endpoint refused the code ({exc.error}{description[:300]}). "
                "Start connecting again.",
                status=502,
            ) from None
        except ValueError:
            # A 200 that is not a JSON object (an HTML page, a form-encoded body).
            raise ConnectError(
                "invalid_token_response",
                f"The token endpoint {_origin(token_url)} answered something other than a "
                "JSON token response. Start connecting again.",
                status=502,
            ) from None
        except httpx.HTTPError as exc:
            raise ConnectError(
                "token_endpoint_unreachable",
                f"The token endpoint {_origin(token_url)} could not be asked "
                f"({type(exc).__name__}). Start connecting again.",
                status=502,
            ) from None
        if not isinstance(answer, Mapping) or not answer.get("access_token"):
            raise ConnectError(
                "invalid_token_response",
                "The token endpoint's answer has no access_token.",
                status=502,
            )
        return dict(answer)


_SECRET_FIELDS = frozenset({"access_token", "refresh_token", "id_token"})


def _flow_id() -> str:
    return f"flow_{secrets.token_hex(12)}"


def _check_account(account: str) -> None:
    if account and not ACCOUNT_NAME.fullmatch(account):
        raise ConfigError(
            "account names are letters, digits and _ . @ + - (at most 200, starting with a "
            f"letter or digit); got {account!r}",
            key="account",
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _authorize_url(auth: OAuth2AuthConfig, state: str, verifier: str, account: str) -> str:
    from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    params: dict[str, str] = dict(auth.authorize_params)
    if auth.scope:
        params["scope"] = auth.scope
    if auth.pkce:
        params["code_challenge"] = create_s256_code_challenge(verifier)
        params["code_challenge_method"] = "S256"
    assert auth.authorize_url is not None and auth.redirect_uri is not None
    url: str = prepare_grant_uri(
        auth.authorize_url,
        client_id=auth.client_id,
        response_type="code",
        redirect_uri=auth.redirect_uri,
        state=state,
        **params,
    )
    return url


def _account_of(auth: OAuth2AuthConfig, flow: FlowRow, answer: Mapping[str, Any]) -> str:
    """The account a new token set is stored under: the one the caller named, else the
    one the answer names at `account_key`, else the default ''."""
    if flow.account:
        return flow.account
    if auth.account_key is None:
        return ""
    value = answer.get(auth.account_key)
    if value is None or value == "":
        raise ConnectError(
            "missing_account",
            f"The token endpoint's answer has no {auth.account_key!r} (auth.account_key) "
            "to name the account by; name it yourself (--account, or account in the "
            "request).",
            status=502,
        )
    account = str(value)
    if not ACCOUNT_NAME.fullmatch(account):
        raise ConnectError(
            "missing_account",
            f"The token endpoint's {auth.account_key!r} is not usable as an account name "
            "(letters, digits and _ . @ + -); name the account yourself.",
            status=502,
        )
    return account


def _check_same_account(
    key: str, account: str, kept: Mapping[str, Any] | None, answer: Mapping[str, Any]
) -> None:
    """A named account connected again must be the provider's same account: tokens of
    another one (the user was signed in as someone else at the provider) would have every
    run of `account` read that account's data into this one's tables."""
    before, now = (kept or {}).get(key), answer.get(key)
    if before in (None, "") or now in (None, ""):
        return
    if str(before) != str(now):
        raise ConnectError(
            "account_mismatch",
            f"Account {account!r} is the provider's {key} {str(before)[:80]!r}, but this "
            f"consent was given by {str(now)[:80]!r}; the tokens are refused and {account!r} "
            "keeps its own. Sign in at the provider as that account and connect again, or "
            "connect this one under another account name.",
            status=409,
        )


def _token(answer: Mapping[str, Any]) -> OAuthToken:
    token_type = str(answer.get("token_type") or "Bearer")
    if token_type.lower() != "bearer":
        # RFC 6749 section 7.1: a client must not use a token type it does not know.
        raise ConnectError(
            "unsupported_token_type",
            f"The provider issued a token of token_type {token_type[:40]!r}; interlink "
            "sends Bearer tokens only (RFC 6750).",
            status=502,
        )
    expires_in = _seconds(answer.get("expires_in"))
    scope = answer.get("scope")
    return OAuthToken(
        access_token=str(answer["access_token"]),
        refresh_token=answer.get("refresh_token") or None,
        expires_at=None if expires_in is None else time.time() + expires_in,
        token_type="Bearer",
        scope=" ".join(scope) if isinstance(scope, list) else scope,
    )


def _whole_seconds(response: httpx.Response) -> httpx.Response:
    """authlib reads `expires_in` with int(): a provider's "3600" string or 3600.0 float
    (some send them) would fail there. Given as whole seconds, or left out when it is not
    a number at all."""
    try:
        body = response.json()
    except ValueError:
        return response  # not JSON: authlib refuses it, and the flow says so
    if not isinstance(body, dict) or "expires_in" not in body:
        return response
    seconds = _seconds(body["expires_in"])
    if seconds is None:
        body.pop("expires_in")
    else:
        body["expires_in"] = int(seconds)
    return httpx.Response(
        response.status_code,
        headers={"content-type": "application/json"},
        json=body,
        request=response.request,
    )


def _seconds(value: Any) -> float | None:
    """`expires_in` as the providers send it: a number, or a number in a string; None for
    anything else (the token is then taken as lasting until a 401 says otherwise)."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 < seconds < 10 * 365 * 86400 else None
