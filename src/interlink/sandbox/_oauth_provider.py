"""The rules of the sandbox's OAuth2 authorization server, without HTTP.

`OAuthProvider` keeps the registered clients and accounts, the authorization codes and the
token families, and decides every grant the way RFC 6749, RFC 7636 (PKCE), RFC 7009
(revocation) and the OAuth 2.0 Security BCP (RFC 9700) ask:

- Codes are single use, expire after `code_lifetime` seconds and are bound to the client,
  the redirect URI and the PKCE challenge (S256 only). A code presented twice is refused
  and the tokens issued for it are revoked (RFC 6749 §4.1.2).
- Every code exchange starts a token *family*. Each refresh rotates the refresh token:
  the answer carries a new one and the old one stops working. Presenting a rotated
  refresh token again is taken as theft and revokes the whole family, access tokens
  included (RFC 9700 §4.14.2), unless `revoke_family_on_reuse` is off.
- Revoking a refresh token revokes its family; revoking an access token revokes that
  token (RFC 7009 §2.1).

The state is guarded by one `threading.Lock` and no method waits while holding it, so
concurrent requests (and tests poking the provider from their own thread) see each grant
happen whole: of ten refreshes racing with one refresh token, exactly one wins.

`clock` gives monotonic seconds; `advance(seconds)` moves the provider's time forward so
tests can expire codes and tokens without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from ._oauth import TokenRequestError, secrets_equal

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_CLIENT",
    "DEFAULT_REDIRECT_URI",
    "AccessGrant",
    "AuthorizeError",
    "OAuthAccount",
    "OAuthClient",
    "OAuthProvider",
    "OAuthProviderStats",
    "s256",
]

DEFAULT_REDIRECT_URI = "http://127.0.0.1:8000/connect/provider/callback"

# RFC 7636 §4.1: 43 to 128 unreserved characters (the S256 challenge is 43 of them).
_PKCE_VALUE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")

Consent = Literal["approve", "deny"]


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A registered confidential client and its one redirect URI (matched exactly)."""

    client_id: str
    client_secret: str
    redirect_uri: str

    def __repr__(self) -> str:
        return (
            f"OAuthClient(client_id={self.client_id!r}, client_secret='**********', "
            f"redirect_uri={self.redirect_uri!r})"
        )


@dataclass(frozen=True, slots=True)
class OAuthAccount:
    """A user of the provider who can connect: their id, name and how many records they own."""

    account_id: str
    name: str
    records: int = 25


DEFAULT_CLIENT = OAuthClient("provider-client", "provider-secret", DEFAULT_REDIRECT_URI)
DEFAULT_ACCOUNTS = (
    OAuthAccount("acct_1001", "Northwind Traders", 25),
    OAuthAccount("acct_1002", "Blue Harbor Foods", 40),
)


@dataclass
class OAuthProviderStats:
    """What clients did to the provider since it started or was reset."""

    codes_issued: int = 0
    codes_redeemed: int = 0
    code_replays: int = 0
    """Codes presented again after their exchange (the tokens issued for them are revoked)."""
    codes_expired: int = 0
    pkce_failures: int = 0
    authorizations_denied: int = 0
    """Authorize requests answered with an error redirect (consent refused, bad scope...)."""
    access_tokens_issued: int = 0
    refreshes: int = 0
    refresh_reuses: int = 0
    """Rotated refresh tokens presented again."""
    families_revoked: int = 0
    revocations: int = 0
    """Successful calls of the revocation endpoint for a token the provider knew."""
    invalid_grants: int = 0
    invalid_clients: int = 0
    api_unauthorized: int = 0
    """API requests whose access token was refused (unknown, expired or revoked)."""

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def reset(self) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, 0)


class AuthorizeError(Exception):
    """An authorize request that cannot be sent back to the client (RFC 6749 §4.1.2.1).

    An unknown client or a redirect URI that is not the registered one: the error is
    shown to the user and never redirected.
    """

    def __init__(self, error: str, description: str) -> None:
        super().__init__(error, description)
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What a live access token allows: whose data, for which client, with which scope."""

    account: OAuthAccount
    client_id: str
    scope: tuple[str, ...]


@dataclass
class _Code:
    client_id: str
    account_id: str
    scope: tuple[str, ...]
    redirect_uri: str | None
    """The redirect_uri of the authorize request; None when it was left out."""
    challenge: str | None
    expires_at: float
    used: bool = False
    family: str | None = None


@dataclass
class _Family:
    family_id: str
    client_id: str
    account_id: str
    scope: tuple[str, ...]
    refresh_token: str
    active: bool = True
    access_tokens: list[str] = field(default_factory=list)


@dataclass
class _Access:
    family: str
    scope: tuple[str, ...]
    expires_at: float
    revoked: bool = False


def s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _grant_error(description: str) -> TokenRequestError:
    return TokenRequestError(400, "invalid_grant", description)


class OAuthProvider:
    """The clients, accounts, codes and tokens of one sandbox authorization server.

    `consent` ("approve" or "deny") is what the imaginary user answers on the consent
    page, and `consent_account` who that user is (an authorize request's `login_hint`
    picks another account); tests change both while the server runs.

    ```python
    provider = OAuthProvider(access_token_lifetime=60, account_key="stripe_user_id")
    answer = provider.grant("provider-client", "acct_1001")  # tokens without a browser
    ```
    """

    def __init__(
        self,
        *,
        clients: Sequence[OAuthClient] = (DEFAULT_CLIENT,),
        accounts: Sequence[OAuthAccount] = DEFAULT_ACCOUNTS,
        scopes: Sequence[str] = ("read", "write"),
        default_scope: str = "read",
        access_token_lifetime: int = 3600,
        code_lifetime: float = 60.0,
        account_key: str = "account_id",
        require_pkce: bool = True,
        revoke_family_on_reuse: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if access_token_lifetime <= 0 or code_lifetime <= 0:
            raise ValueError("token and code lifetimes must be positive")
        if not clients or not accounts:
            raise ValueError("the provider needs at least one client and one account")
        self.clients = {client.client_id: client for client in clients}
        self.accounts = {account.account_id: account for account in accounts}
        if len(self.clients) != len(clients) or len(self.accounts) != len(accounts):
            raise ValueError("client ids and account ids must be unique")
        self.scopes = tuple(scopes)
        unknown = set(default_scope.split()) - set(self.scopes)
        if unknown:
            raise ValueError(f"default_scope names unknown scopes: {sorted(unknown)}")
        self.default_scope = tuple(default_scope.split())
        self.access_token_lifetime = access_token_lifetime
        self.code_lifetime = code_lifetime
        self.account_key = account_key
        self.require_pkce = require_pkce
        self.revoke_family_on_reuse = revoke_family_on_reuse
        self.clock = clock
        self.stats = OAuthProviderStats()
        self.consent: Consent = "approve"
        self.consent_account = next(iter(self.accounts))
        self._offset = 0.0
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._families: dict[str, _Family] = {}
        self._refresh: dict[str, str] = {}
        """Every refresh token ever issued -> its family, to recognise a rotated one."""
        self._access: dict[str, _Access] = {}

    # -- time and bookkeeping -------------------------------------------------------------

    def now(self) -> float:
        return self.clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the provider's clock forward, as if `seconds` had passed."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        """Forget every code and token, zero the counters and approve consent again."""
        with self._lock:
            self._codes.clear()
            self._families.clear()
            self._refresh.clear()
            self._access.clear()
            self.stats.reset()
            self.consent = "approve"
            self.consent_account = next(iter(self.accounts))

    # -- the authorization endpoint -------------------------------------------------------

    def authorize(self, params: Sequence[tuple[str, str]], *, issuer: str) -> str:
        """The URL to redirect the user agent to, with a code or an error (RFC 6749 §4.1.2).

        `params` are the query parameters in order (repeats included); `issuer` is sent
        back as `iss` (RFC 9207) so that clients can defend against mix-up attacks.
        Raises `AuthorizeError` when the client or the redirect URI cannot be trusted.
        """
        query: dict[str, str] = {}
        repeated: set[str] = set()
        for name, value in params:
            if name in query:
                repeated.add(name)
            query[name] = value
        for name in ("client_id", "redirect_uri"):
            if name in repeated:
                raise AuthorizeError("invalid_request", f"{name} is repeated.")
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            raise AuthorizeError("invalid_client", "Unknown or missing client_id.")
        given_uri = query.get("redirect_uri")
        # RFC 9700 §2.1: exact string matching, nothing looser.
        if given_uri is not None and given_uri != client.redirect_uri:
            raise AuthorizeError(
                "invalid_request", "redirect_uri is not the one registered for this client."
            )
        answer: dict[str, str] = {}
        state = query.get("state")

        def refuse(error: str, description: str) -> str:
            with self._lock:
                self.stats.authorizations_denied += 1
            answer.update(error=error, error_description=description)
            if state is not None:
                answer["state"] = state
            answer["iss"] = issuer
            return _with_query(client.redirect_uri, answer)

        if repeated:
            return refuse("invalid_request", f"Repeated parameters: {', '.join(sorted(repeated))}.")
        if query.get("response_type") != "code":
            return refuse("unsupported_response_type", "Only response_type=code is supported.")
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method")
        if challenge is None:
            if self.require_pkce:
                return refuse("invalid_request", "code_challenge (PKCE, S256) is required.")
            if method is not None:
                return refuse("invalid_request", "code_challenge_method without code_challenge.")
        else:
            # RFC 7636 §4.3 defaults to "plain", which RFC 9700 §2.1.1 rules out.
            if method != "S256":
                return refuse("invalid_request", "code_challenge_method must be S256.")
            if not _PKCE_VALUE.match(challenge):
                return refuse("invalid_request", "code_challenge is not a valid S256 challenge.")
        raw_scope = query.get("scope")
        scope = tuple(dict.fromkeys(raw_scope.split())) if raw_scope else self.default_scope
        unknown = [name for name in scope if name not in self.scopes]
        if unknown or not scope:
            known = " ".join(self.scopes)
            return refuse("invalid_scope", f"Unknown scope {' '.join(unknown)!r}; known: {known}.")
        with self._lock:
            consent, account_id = self.consent, self.consent_account
        hint = query.get("login_hint")
        if hint is not None:
            if hint not in self.accounts:
                return refuse("access_denied", f"No account {hint!r} can sign in.")
            account_id = hint
        if consent == "deny":
            return refuse("access_denied", "The user denied access.")
        code = "code_" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                client_id=client.client_id,
                account_id=account_id,
                scope=scope,
                redirect_uri=given_uri,
                challenge=challenge,
                expires_at=self.now() + self.code_lifetime,
            )
            self.stats.codes_issued += 1
        answer["code"] = code
        if state is not None:
            answer["state"] = state
        answer["iss"] = issuer
        return _with_query(client.redirect_uri, answer)

    # -- the token endpoint ---------------------------------------------------------------

    def authenticate(self, client_id: str, client_secret: str) -> OAuthClient:
        """The client with these credentials, or `invalid_client` (401)."""
        client = self.clients.get(client_id)
        # Compare a secret even for an unknown client, so timing does not tell them apart.
        expected = client.client_secret if client is not None else secrets.token_urlsafe(16)
        if client is None or not secrets_equal(client_secret, expected):
            with self._lock:
                self.stats.invalid_clients += 1
            raise TokenRequestError(401, "invalid_client", "Unknown client or wrong secret.")
        return client

    def token(self, client: OAuthClient, form: Mapping[str, str]) -> dict[str, Any]:
        """Answer a token request of an authenticated client (RFC 6749 §4.1.3, §6)."""
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise TokenRequestError(400, "invalid_request", "grant_type is required.")
        try:
            with self._lock:
                if grant_type == "authorization_code":
                    return self._exchange_code(client, form)
                if grant_type == "refresh_token":
                    return self._refresh_grant(client, form)
        except TokenRequestError as error:
            if error.error == "invalid_grant":
                with self._lock:
                    self.stats.invalid_grants += 1
            raise
        raise TokenRequestError(
            400,
            "unsupported_grant_type",
            "Only authorization_code and refresh_token are supported.",
        )

    def _exchange_code(self, client: OAuthClient, form: Mapping[str, str]) -> dict[str, Any]:
        raw = form.get("code")
        if not raw:
            raise TokenRequestError(400, "invalid_request", "code is required.")
        code = self._codes.get(raw)
        if code is None or code.client_id != client.client_id:
            raise _grant_error("The code is unknown or was issued to another client.")
        if code.used:
            self.stats.code_replays += 1
            if code.family is not None:
                self._revoke_family(self._families[code.family])
            raise _grant_error("The code was already used; its tokens are revoked.")
        if self.now() >= code.expires_at:
            self.stats.codes_expired += 1
            raise _grant_error("The code expired.")
        if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
            raise _grant_error("redirect_uri differs from the authorize request's.")
        verifier = form.get("code_verifier")
        if code.challenge is None:
            if verifier is not None:
                # RFC 9700 §2.1.1: a verifier for a code without a challenge is a downgrade.
                self.stats.pkce_failures += 1
                raise _grant_error("code_verifier given, but the code has no challenge.")
        elif (
            verifier is None
            or not _PKCE_VALUE.match(verifier)
            or not secrets_equal(s256(verifier), code.challenge)
        ):
            self.stats.pkce_failures += 1
            raise _grant_error("code_verifier is missing or does not match the code_challenge.")
        code.used = True
        self.stats.codes_redeemed += 1
        family = self._new_family(client.client_id, code.account_id, code.scope)
        code.family = family.family_id
        return self._answer(family, family.scope)

    def _refresh_grant(self, client: OAuthClient, form: Mapping[str, str]) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented:
            raise TokenRequestError(400, "invalid_request", "refresh_token is required.")
        family_id = self._refresh.get(presented)
        family = self._families.get(family_id) if family_id is not None else None
        if family is None or family.client_id != client.client_id:
            raise _grant_error("The refresh token is unknown or was issued to another client.")
        if presented != family.refresh_token:
            self.stats.refresh_reuses += 1
            if self.revoke_family_on_reuse and family.active:
                self._revoke_family(family)
                raise _grant_error(
                    "The refresh token was already rotated; every token of this grant is revoked."
                )
            raise _grant_error("The refresh token was already rotated.")
        if not family.active:
            raise _grant_error("The refresh token was revoked.")
        scope = family.scope
        raw_scope = form.get("scope")
        if raw_scope:
            scope = tuple(dict.fromkeys(raw_scope.split()))
            wider = [name for name in scope if name not in family.scope]
            if wider:
                raise TokenRequestError(
                    400, "invalid_scope", f"Scope {' '.join(wider)!r} was not granted."
                )
        family.refresh_token = self._issue_refresh(family.family_id)
        self.stats.refreshes += 1
        return self._answer(family, scope)

    # -- issuing and revoking -------------------------------------------------------------

    def grant(self, client_id: str, account_id: str, scope: str | None = None) -> dict[str, Any]:
        """Issue tokens as a completed authorization would, without the browser round trip.

        Returns the token endpoint's answer; for tests that need a connected account.
        """
        if client_id not in self.clients or account_id not in self.accounts:
            raise ValueError(f"unknown client {client_id!r} or account {account_id!r}")
        scopes = tuple(scope.split()) if scope else self.default_scope
        if not set(scopes) <= set(self.scopes):
            raise ValueError(f"unknown scope in {scope!r}")
        with self._lock:
            family = self._new_family(client_id, account_id, scopes)
            return self._answer(family, scopes)

    def _new_family(self, client_id: str, account_id: str, scope: tuple[str, ...]) -> _Family:
        family_id = secrets.token_hex(8)
        family = _Family(family_id, client_id, account_id, scope, refresh_token="")
        family.refresh_token = self._issue_refresh(family_id)
        self._families[family_id] = family
        return family

    def _issue_refresh(self, family_id: str) -> str:
        token = "rt_" + secrets.token_urlsafe(32)
        self._refresh[token] = family_id
        return token

    def _answer(self, family: _Family, scope: tuple[str, ...]) -> dict[str, Any]:
        access = "at_" + secrets.token_urlsafe(32)
        self._access[access] = _Access(
            family.family_id, scope, self.now() + self.access_token_lifetime
        )
        family.access_tokens.append(access)
        self.stats.access_tokens_issued += 1
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "refresh_token": family.refresh_token,
            "scope": " ".join(scope),
            self.account_key: family.account_id,
        }

    def _revoke_family(self, family: _Family) -> None:
        if not family.active:
            return
        family.active = False
        for token in family.access_tokens:
            self._access[token].revoked = True
        self.stats.families_revoked += 1

    def revoke(self, client: OAuthClient, token: str, hint: str | None = None) -> None:
        """Revoke an access or refresh token of `client` (RFC 7009 §2.1).

        An unknown token is not an error (§2.2); a token of another client is refused.
        `hint` only decides which kind is looked up first.
        """
        with self._lock:
            kinds: Iterable[str] = (
                ("access", "refresh") if hint != "refresh_token" else ("refresh", "access")
            )
            for kind in kinds:
                if kind == "access" and token in self._access:
                    access = self._access[token]
                    self._owned(self._families[access.family], client)
                    if not access.revoked:
                        access.revoked = True
                        self.stats.revocations += 1
                    return
                if kind == "refresh" and token in self._refresh:
                    family = self._families[self._refresh[token]]
                    self._owned(family, client)
                    if family.active:
                        self._revoke_family(family)
                        self.stats.revocations += 1
                    return

    @staticmethod
    def _owned(family: _Family, client: OAuthClient) -> None:
        if family.client_id != client.client_id:
            raise TokenRequestError(
                400, "invalid_request", "The token was issued to another client."
            )

    # -- the protected API ----------------------------------------------------------------

    def check_access(self, token: str) -> AccessGrant | str:
        """The grant of a live access token, or why it is refused (for the 401 answer)."""
        with self._lock:
            access = self._access.get(token)
            if access is None:
                reason = "The access token is unknown."
            elif access.revoked:
                reason = "The access token was revoked."
            elif self.now() >= access.expires_at:
                reason = "The access token expired."
            else:
                family = self._families[access.family]
                return AccessGrant(self.accounts[family.account_id], family.client_id, access.scope)
            self.stats.api_unauthorized += 1
            return reason
