"""An OAuth2 token endpoint for the client credentials grant, and the bearer check it feeds.

`POST /oauth2-token` follows RFC 6749 §4.4: a form-encoded body
(`application/x-www-form-urlencoded`) with `grant_type=client_credentials`, and the client
authenticated either by `client_secret_basic` (`Authorization: Basic` of the form-encoded
`client_id:client_secret`, §2.3.1) or by `client_secret_post` (`client_id` and
`client_secret` form fields), never both. The answer is
`{"access_token", "token_type": "Bearer", "expires_in"}` with `Cache-Control: no-store`
(§5.1). Errors are `{"error", "error_description"}` (§5.2): `invalid_request` 400 (wrong
content type, repeated parameters, two auth methods, no `grant_type`), `invalid_client`
401 with `WWW-Authenticate: Basic` (unknown client, wrong secret, no client auth),
`unsupported_grant_type` 400.

Issued tokens are random and valid for `lifetime` seconds; `BearerTokenMiddleware`
answers 401 with `WWW-Authenticate: Bearer realm=..., error="invalid_token"` (RFC 6750
§3) for an unknown or expired one, and without `error` when there is no token at all.

The form and client-authentication rules (`read_token_form`, `client_credentials`,
`token_error_response`) are shared with the authorization-code provider
(`_oauth_provider_app`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable, Collection
from urllib.parse import parse_qsl, unquote_plus

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ._admin import SandboxStats, is_admin_path, route_path
from ._jsonapi import error_object, errors_response
from ._responses import JSONResponse

__all__ = [
    "NO_STORE",
    "BearerTokenMiddleware",
    "ClientCredentialsIssuer",
    "TokenRequestError",
    "client_credentials",
    "read_token_form",
    "secrets_equal",
    "token_error_response",
]

# RFC 6749 §5.1: token answers must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenRequestError(Exception):
    """An OAuth2 error answer (RFC 6749 §5.2): HTTP status, `error` code and description."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error, description)
        self.status = status
        self.error = error
        self.description = description


def secrets_equal(given: str, expected: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def read_token_form(content_type: str, body: bytes) -> dict[str, str]:
    """The parameters of a form-encoded token (or revocation) request.

    Raises `TokenRequestError` (`invalid_request`) for another content type, a body that
    is not UTF-8 or a repeated parameter (RFC 6749 §3.2).
    """
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise TokenRequestError(
            400, "invalid_request", "The body must be application/x-www-form-urlencoded."
        )
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise TokenRequestError(400, "invalid_request", "The body is not UTF-8.") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise TokenRequestError(400, "invalid_request", "A parameter is repeated.")
    return form


def client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    """The `(client_id, client_secret)` a token request authenticates with.

    Either `client_secret_basic` (the `Authorization: Basic` header, both parts
    form-encoded, RFC 6749 §2.3.1) or `client_secret_post` (form fields), never both.
    Whether they are right is the caller's check.
    """
    scheme, _, credentials = (authorization or "").partition(" ")
    basic = scheme.lower() == "basic"
    if basic and "client_secret" in form:
        raise TokenRequestError(
            400, "invalid_request", "Use one client authentication method, not two."
        )
    if basic:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise TokenRequestError(401, "invalid_client", "Malformed Basic credentials.") from None
        raw_id, colon, raw_secret = decoded.partition(":")
        if not colon:
            raise TokenRequestError(401, "invalid_client", "Malformed Basic credentials.")
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if "client_id" in form and form["client_id"] != client_id:
            raise TokenRequestError(400, "invalid_request", "client_id differs from the header.")
        return client_id, secret
    if "client_secret" in form:
        return form.get("client_id", ""), form["client_secret"]
    raise TokenRequestError(401, "invalid_client", "Client authentication is required.")


def token_error_response(error: TokenRequestError, realm: str) -> Response:
    """The JSON error answer; a 401 carries `WWW-Authenticate: Basic` (RFC 6749 §5.2)."""
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers=headers,
    )


class ClientCredentialsIssuer:
    """Issues and checks the access tokens of one app's single OAuth2 client."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        lifetime: int,
        stats: SandboxStats,
        realm: str = "sandbox",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lifetime <= 0:
            raise ValueError("the token lifetime must be positive")
        self.client_id = client_id
        self.client_secret = client_secret
        self.lifetime = lifetime
        self.stats = stats
        self.realm = realm
        self.clock = clock
        self._expiry: dict[str, float] = {}

    def is_valid(self, token: str) -> bool:
        expiry = self._expiry.get(token)
        if expiry is None:
            return False
        if self.clock() >= expiry:
            del self._expiry[token]
            return False
        return True

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        self._expiry[token] = self.clock() + self.lifetime
        self.stats.tokens_issued += 1
        return token

    async def token_endpoint(self, request: Request) -> Response:
        try:
            form = read_token_form(request.headers.get("content-type", ""), await request.body())
            self._authenticate(request.headers.get("authorization"), form)
            grant_type = form.get("grant_type")
            if grant_type is None:
                raise TokenRequestError(400, "invalid_request", "grant_type is required.")
            if grant_type != "client_credentials":
                raise TokenRequestError(
                    400, "unsupported_grant_type", "Only client_credentials is supported."
                )
        except TokenRequestError as error:
            return token_error_response(error, self.realm)
        return JSONResponse(
            {"access_token": self.issue(), "token_type": "Bearer", "expires_in": self.lifetime},
            headers=NO_STORE,
        )

    def _authenticate(self, authorization: str | None, form: dict[str, str]) -> None:
        client_id, secret = client_credentials(authorization, form)
        if not (
            secrets_equal(client_id, self.client_id) and secrets_equal(secret, self.client_secret)
        ):
            raise TokenRequestError(401, "invalid_client", "Unknown client or wrong secret.")


class BearerTokenMiddleware:
    """Requires a live token of `issuer` on every path but `open_paths` and the admin ones."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        issuer: ClientCredentialsIssuer,
        stats: SandboxStats,
        open_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.issuer = issuer
        self.stats = stats
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_admin_path(scope) or route_path(scope) in self.open_paths:
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        realm = f'Bearer realm="{self.issuer.realm}"'
        if scheme.lower() != "bearer" or not token.strip():
            await self._reject(scope, receive, send, realm, "An access token is required.")
        elif not self.issuer.is_valid(token.strip()):
            challenge = f'{realm}, error="invalid_token"'
            detail = "The access token is unknown or expired."
            await self._reject(scope, receive, send, challenge, detail)
        else:
            await self.app(scope, receive, send)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, challenge: str, detail: str
    ) -> None:
        self.stats.unauthorized += 1
        response = errors_response(
            401,
            [error_object(401, "invalid_token", detail)],
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)
