"""The "provider" sandbox: an OAuth2 authorization server and the API its tokens unlock.

It plays a platform such as Stripe Connect, whose users connect their account to an
integration. The rules live in `OAuthProvider` (`_oauth_provider`); this module serves them.

- `GET /oauth/authorize?response_type=code&client_id=&redirect_uri=&state=&scope=
  &code_challenge=&code_challenge_method=S256[&login_hint=ACCOUNT]`: consent is automatic.
  302 to the registered redirect URI with `code`, `state` and `iss`, or with
  `error=access_denied` (consent set to "deny"), `invalid_scope`, `invalid_request`
  (no PKCE, plain PKCE, a repeated parameter) or `unsupported_response_type`. An unknown
  client or a redirect URI other than the registered one is a 400 that redirects nowhere.
- `POST /oauth/token` (form-encoded; `client_secret_basic` or `client_secret_post`):
  `grant_type=authorization_code` with `code`, `redirect_uri` and `code_verifier`, or
  `grant_type=refresh_token` with `refresh_token` (and optionally a narrower `scope`).
  Answers `{"access_token", "token_type": "Bearer", "expires_in", "refresh_token",
  "scope", <account_key>}` with `Cache-Control: no-store`; every refresh rotates the
  refresh token. Errors are RFC 6749 §5.2 JSON: `invalid_grant`, `invalid_client` (401),
  `invalid_request`, `invalid_scope`, `unsupported_grant_type`.
- `POST /oauth/revoke` (RFC 7009): `token` and optional `token_type_hint`; 200 also for a
  token it does not know.
- `GET /.well-known/oauth-authorization-server`: the RFC 8414 metadata.
- `GET /api/me` -> `{"id", "name", "scope", "client_id"}` of the token's account, and
  `GET /api/customers?offset=&limit=&updated_since=` -> `{"data", "total", "offset",
  "limit"}`: that account's own customers (scope `read`). Without a live access token:
  401 with `WWW-Authenticate: Bearer realm="provider", error="invalid_token"` (RFC 6750
  §3.1); with a token lacking the scope: 403 `error="insufficient_scope"`.

Without auth: `GET /_stats` (request counters, and under `oauth` the provider's: codes
issued, redeemed, replayed and expired, PKCE failures, refreshes, refresh-token reuses,
families revoked...), `POST /_reset` (forgets every code and token), `POST /_consent` with
`{"consent": "approve" | "deny", "account": ACCOUNT_ID}` (both optional), and `POST
/_clock` with `{"advance": SECONDS}` to expire codes and tokens without waiting.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ._admin import SandboxStats, StatsMiddleware, route_path
from ._data import CustomerStore
from ._oauth import (
    NO_STORE,
    TokenRequestError,
    client_credentials,
    read_token_form,
    token_error_response,
)
from ._oauth_provider import AccessGrant, AuthorizeError, OAuthProvider
from ._pagination import page_size, query_int, since_param
from ._responses import JSONResponse, error_response

__all__ = ["create_oauth_provider_app"]

REALM = "provider"


def _issuer(request: Request) -> str:
    """The provider's base URL, mount prefix included (`http://host/provider` in the suite)."""
    path, inner = request.url.path, route_path(request.scope)
    prefix = path[: len(path) - len(inner)] if path.endswith(inner) else ""
    return str(request.url.replace(path=prefix, query="")).rstrip("/")


class _ProviderApi:
    """The route handlers of one provider app."""

    def __init__(self, provider: OAuthProvider, stats: SandboxStats, seed: int) -> None:
        self.provider = provider
        self.stats = stats
        self.seed = seed
        self.customers = {
            account_id: self._store(account_id, account.records)
            for account_id, account in provider.accounts.items()
        }

    def _store(self, account_id: str, records: int) -> CustomerStore:
        # Each account gets data of its own, stable across runs.
        return CustomerStore(records=records, seed=self.seed ^ zlib.crc32(account_id.encode()))

    def reset(self) -> None:
        self.provider.reset()
        self.stats.reset()
        for store in self.customers.values():
            store.reset()

    # -- the authorization server ---------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        issuer = _issuer(request)
        try:
            location = self.provider.authorize(request.query_params.multi_items(), issuer=issuer)
        except AuthorizeError as error:
            return JSONResponse(
                {"error": error.error, "error_description": error.description},
                status_code=400,
                headers=NO_STORE,
            )
        return RedirectResponse(location, status_code=302, headers=NO_STORE)

    async def token(self, request: Request) -> Response:
        try:
            form = read_token_form(request.headers.get("content-type", ""), await request.body())
            client = self.provider.authenticate(
                *client_credentials(request.headers.get("authorization"), form)
            )
            answer = self.provider.token(client, form)
        except TokenRequestError as error:
            return token_error_response(error, REALM)
        return JSONResponse(answer, headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        try:
            form = read_token_form(request.headers.get("content-type", ""), await request.body())
            client = self.provider.authenticate(
                *client_credentials(request.headers.get("authorization"), form)
            )
            token = form.get("token")
            if not token:
                raise TokenRequestError(400, "invalid_request", "token is required.")
            self.provider.revoke(client, token, form.get("token_type_hint"))
        except TokenRequestError as error:
            return token_error_response(error, REALM)
        return Response(status_code=200, headers=NO_STORE)

    async def metadata(self, request: Request) -> Response:
        issuer = _issuer(request)
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/oauth/authorize",
                "token_endpoint": f"{issuer}/oauth/token",
                "revocation_endpoint": f"{issuer}/oauth/revoke",
                "scopes_supported": list(self.provider.scopes),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "revocation_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "authorization_response_iss_parameter_supported": True,
            }
        )

    # -- the protected API ----------------------------------------------------------------

    def _grant(self, request: Request, scope: str | None = None) -> AccessGrant | Response:
        """The grant of the request's bearer token, or the 401/403 answer (RFC 6750 §3)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        realm = f'Bearer realm="{REALM}"'
        if scheme.lower() != "bearer" or not token.strip():
            # RFC 6750 §3.1: no error code when the request carried no credentials.
            self.stats.unauthorized += 1
            return error_response(
                401,
                "invalid_token",
                "An access token is required.",
                headers={"WWW-Authenticate": realm},
            )
        found = self.provider.check_access(token.strip())
        if isinstance(found, str):
            self.stats.unauthorized += 1
            challenge = f'{realm}, error="invalid_token", error_description="{found}"'
            return error_response(
                401, "invalid_token", found, headers={"WWW-Authenticate": challenge}
            )
        if scope is not None and scope not in found.scope:
            challenge = f'{realm}, error="insufficient_scope", scope="{scope}"'
            return error_response(
                403,
                "insufficient_scope",
                f"This needs the {scope!r} scope.",
                headers={"WWW-Authenticate": challenge},
            )
        return found

    async def me(self, request: Request) -> Response:
        grant = self._grant(request)
        if isinstance(grant, Response):
            return grant
        return JSONResponse(
            {
                "id": grant.account.account_id,
                "name": grant.account.name,
                "scope": " ".join(grant.scope),
                "client_id": grant.client_id,
            }
        )

    async def list_customers(self, request: Request) -> Response:
        grant = self._grant(request, "read")
        if isinstance(grant, Response):
            return grant
        store = self.customers[grant.account.account_id]
        offset = query_int(request, "offset", 0, minimum=0)
        limit = page_size(request, "limit")
        since = since_param(request)
        return JSONResponse(
            {
                "data": store.page(offset, limit, since),
                "total": store.count(since),
                "offset": offset,
                "limit": limit,
            }
        )

    # -- admin ----------------------------------------------------------------------------

    async def get_stats(self, request: Request) -> Response:
        return JSONResponse({**self.stats.as_dict(), "oauth": self.provider.stats.as_dict()})

    async def post_reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})

    async def post_consent(self, request: Request) -> Response:
        body = _json_object(await request.body())
        if isinstance(body, Response):
            return body
        consent = body.get("consent", self.provider.consent)
        account = body.get("account", self.provider.consent_account)
        if consent not in ("approve", "deny"):
            return error_response(400, "invalid_parameter", "consent must be approve or deny.")
        if account not in self.provider.accounts:
            known = ", ".join(self.provider.accounts)
            return error_response(400, "invalid_parameter", f"account must be one of {known}.")
        self.provider.consent = consent
        self.provider.consent_account = account
        return JSONResponse({"consent": consent, "account": account})

    async def post_clock(self, request: Request) -> Response:
        body = _json_object(await request.body())
        if isinstance(body, Response):
            return body
        seconds = body.get("advance")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            return error_response(
                400, "invalid_parameter", "advance must be a number of seconds, at least 0."
            )
        self.provider.advance(float(seconds))
        return JSONResponse({"advanced": seconds})


def _json_object(raw: bytes) -> dict[str, Any] | Response:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return error_response(400, "invalid_json", "The body is not valid JSON.")
    if not isinstance(body, dict):
        return error_response(400, "invalid_json", "The body must be a JSON object.")
    return body


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {400: "invalid_parameter", 404: "not_found", 405: "method_not_allowed"}
    return error_response(
        exc.status_code, codes.get(exc.status_code, "http_error"), exc.detail, headers=exc.headers
    )


def create_oauth_provider_app(
    provider: OAuthProvider | None = None, *, seed: int = 42
) -> Starlette:
    """Build the provider sandbox app around `provider` (a default one when not given).

    `app.state.provider` is the `OAuthProvider`, for tests that change its consent or
    clock or read its counters in-process.

    ```python
    provider = OAuthProvider(access_token_lifetime=60, account_key="stripe_user_id")
    with SandboxServer(create_oauth_provider_app(provider)) as server:
        tokens = provider.grant("provider-client", "acct_1001")
        httpx.get(f"{server.url}/api/customers",
                  headers={"Authorization": f"Bearer {tokens['access_token']}"})
    ```
    """
    provider = provider if provider is not None else OAuthProvider()
    stats = SandboxStats()
    api = _ProviderApi(provider, stats, seed)
    app = Starlette(
        routes=[
            Route("/oauth/authorize", api.authorize, methods=["GET"]),
            Route("/oauth/token", api.token, methods=["POST"]),
            Route("/oauth/revoke", api.revoke, methods=["POST"]),
            Route("/.well-known/oauth-authorization-server", api.metadata, methods=["GET"]),
            Route("/api/me", api.me, methods=["GET"]),
            Route("/api/customers", api.list_customers, methods=["GET"]),
            Route("/_stats", api.get_stats, methods=["GET"]),
            Route("/_reset", api.post_reset, methods=["POST"]),
            Route("/_consent", api.post_consent, methods=["POST"]),
            Route("/_clock", api.post_clock, methods=["POST"]),
        ],
        middleware=[Middleware(StatsMiddleware, stats=stats)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.provider = provider
    app.state.stats = stats
    app.state.customers = api.customers
    return app
