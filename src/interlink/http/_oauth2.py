"""OAuth2 as httpx auth flows: client credentials, and stored tokens refreshed on expiry.

The token requests are yielded by the flow like any other request, so they go through the
same transports (retries, rate limit) and tests drive them with `httpx.MockTransport`.
Refreshes are single-flight: when many requests find the token expired at the same moment,
one fetches and the rest wait for it (an asyncio lock held across the yield).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
import orjson

from interlink.errors import OAuthError
from interlink.types import OAuthToken, SharedTokenSource, TokenSource, WallClock

from ._redact import Redactor
from ._retry import RETRY_SAFE

__all__ = [
    "ClientCredentialsAuth",
    "MemoryTokenSource",
    "OAuth2TokenAuth",
    "TokenEndpoint",
]

logger = logging.getLogger("interlink.http")

# Renew this long before the announced expiry, so a token never dies in flight.
_EXPIRY_MARGIN = 30.0


class TokenEndpoint:
    """Builds requests to an OAuth2 token endpoint and reads its answers (RFC 6749 s. 4-5)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        *,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        redactor: Redactor | None = None,
        wall: WallClock = time.time,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.auth_method = auth_method
        self.redactor = redactor or Redactor()
        self.redactor.add_secret(client_secret)
        self._basic: str | None = None
        if auth_method == "client_secret_basic" and client_secret is not None:
            # RFC 6749 s. 2.3.1: both parts are form-encoded before base64.
            pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
            self._basic = base64.b64encode(pair.encode()).decode()
            self.redactor.add_secret(self._basic)
        self._wall = wall

    def request(self, form: dict[str, str], *, resendable: bool = True) -> httpx.Request:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        body = dict(form)
        if self._basic is not None:
            headers["Authorization"] = "Basic " + self._basic
        else:
            body["client_id"] = self.client_id
            if self._client_secret is not None:
                body["client_secret"] = self._client_secret
        return httpx.Request(
            "POST",
            self.token_url,
            headers=headers,
            content=urlencode(body).encode(),
            # A new token request has no side effect worth protecting: safe to resend. A
            # refresh is not: the provider may have rotated the refresh token before the
            # answer was lost, and sending the old one again revokes the grant.
            extensions={RETRY_SAFE: True} if resendable else {},
        )

    def parse(self, response: httpx.Response, previous: OAuthToken | None = None) -> OAuthToken:
        """The token in a token endpoint's answer, or OAuthError with the endpoint's reason."""
        body: Any
        try:
            body = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            error = "invalid_response"
            description: str | None = f"HTTP {response.status_code}, no JSON token in the body"
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                error = body["error"]
                raw = body.get("error_description")
                description = raw if isinstance(raw, str) else None
            raise OAuthError(
                error,
                self.redactor.text(description) if description else None,
                status_code=response.status_code,
                token_url=self.redactor.url(self.token_url),
            )
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthError(
                "invalid_response",
                "the token endpoint answered without an access_token",
                status_code=response.status_code,
                token_url=self.redactor.url(self.token_url),
            )
        self.redactor.add_secret(access)
        refresh = body.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self.redactor.add_secret(refresh)
        else:
            # No new refresh token means the old one stays valid (RFC 6749 s. 6).
            refresh = previous.refresh_token if previous else None
        expires_in = body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float | str):
            try:
                expires_at = self._wall() + float(expires_in)
            except ValueError:
                expires_at = None
        scope = body.get("scope")
        return OAuthToken(
            access_token=access,
            refresh_token=refresh,
            expires_at=expires_at,
            token_type=str(body.get("token_type") or "Bearer"),
            scope=scope if isinstance(scope, str) else None,
        )

    def fresh(self, token: OAuthToken | None) -> bool:
        if token is None:
            return False
        if token.expires_at is None:
            return True
        return self._wall() < token.expires_at - _EXPIRY_MARGIN


def _bearer(token: OAuthToken) -> str:
    # Many servers answer "bearer" in lower case; the header scheme is case-insensitive but
    # some servers only accept "Bearer".
    kind = "Bearer" if token.token_type.lower() == "bearer" else token.token_type
    return f"{kind} {token.access_token}"


class ClientCredentialsAuth(httpx.Auth):
    """OAuth2 client-credentials grant: fetch a token, cache it until shortly before expiry.

    A 401 on a request made with the cached token fetches a new one once and replays the
    request; concurrent requests share one fetch.
    """

    def __init__(
        self,
        endpoint: TokenEndpoint,
        *,
        scope: str | None = None,
        audience: str | None = None,
        extra_params: dict[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        # extra_params come first so they can add to the grant but never change its type.
        self._form = {**(extra_params or {}), "grant_type": "client_credentials"}
        if scope:
            self._form["scope"] = scope
        if audience:
            self._form["audience"] = audience
        self._token: OAuthToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def sync_auth_flow(self, request: httpx.Request) -> Any:
        raise RuntimeError("ClientCredentialsAuth works with interlink's async ApiClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._token
        if not self.endpoint.fresh(token):
            async with self._lock:
                if self._token is token or not self.endpoint.fresh(self._token):
                    response = yield self.endpoint.request(self._form)
                    self.fetches += 1
                    self._token = self.endpoint.parse(response)
                token = self._token
        assert token is not None
        request.headers["Authorization"] = _bearer(token)
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:
            if self._token is token:
                token_response = yield self.endpoint.request(self._form)
                self.fetches += 1
                self._token = self.endpoint.parse(token_response)
            token = self._token
        assert token is not None
        request.headers["Authorization"] = _bearer(token)
        yield request

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(token_url={self.endpoint.token_url!r})"


class MemoryTokenSource:
    """A TokenSource that keeps the token in memory (seeded from config, or for tests)."""

    def __init__(self, token: OAuthToken | None = None) -> None:
        self.token = token
        self.saves = 0

    async def load(self) -> OAuthToken | None:
        return self.token

    async def save(self, token: OAuthToken) -> None:
        self.token = token
        self.saves += 1


class OAuth2TokenAuth(httpx.Auth):
    """Authorization-code OAuth2: use the stored token, refresh it when it expires.

    The refresh_token grant runs when the token is about to expire and once on a 401. The
    new token is saved to the `TokenSource` before it is used, so a rotated refresh token
    is never lost even if the process dies right after. A save that fails does not drop
    it (the provider may have revoked the old refresh token already): it is used, kept
    here as the newest, and saved again at each next request until the source takes it.
    """

    def __init__(self, source: TokenSource, endpoint: TokenEndpoint, *, name: str = "") -> None:
        self.source = source
        self.endpoint = endpoint
        self.name = name
        self._token: OAuthToken | None = None
        self._unsaved: OAuthToken | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def sync_auth_flow(self, request: httpx.Request) -> Any:
        raise RuntimeError("OAuth2TokenAuth works with interlink's async ApiClient only")

    async def _load(self) -> OAuthToken:
        if self._unsaved is not None and not await self._keep(self._unsaved):
            return self._unsaved  # newer than anything the source holds
        token = await self.source.load()
        if token is None:
            hint = f"; run `interlink connect {self.name}`" if self.name else ""
            raise OAuthError("not_connected", f"no token is stored for this connection{hint}")
        self.endpoint.redactor.add_secret(token.access_token)
        self.endpoint.redactor.add_secret(token.refresh_token)
        return token

    async def _keep(self, token: OAuthToken) -> bool:
        """Save a token the endpoint issued; False when the source could not take it (it
        is then kept as `_unsaved`, to be used and saved again later)."""
        try:
            await self.source.save(token)
        except Exception as exc:
            if self._unsaved is not token:
                logger.warning(
                    "connection %s: the refreshed token could not be stored (%s: %s); it is "
                    "used, and stored at the next request",
                    self.name or self.endpoint.redactor.url(self.endpoint.token_url),
                    type(exc).__name__,
                    self.endpoint.redactor.text(str(exc))[:300],
                )
            self._unsaved = token
            return False
        if self._unsaved is token:
            self._unsaved = None
        return True

    def _refresh_request(self, token: OAuthToken) -> httpx.Request:
        if not token.refresh_token:
            raise OAuthError(
                "no_refresh_token", "the access token expired and no refresh token is stored"
            )
        return self.endpoint.request(
            {"grant_type": "refresh_token", "refresh_token": token.refresh_token},
            resendable=False,
        )

    def _exclusive(self) -> AbstractAsyncContextManager[None]:
        """The source's lock across processes while refreshing, when it has one."""
        if isinstance(self.source, SharedTokenSource):
            return self.source.refreshing()
        return nullcontext()

    async def _parsed(self, response: httpx.Response, previous: OAuthToken) -> OAuthToken:
        try:
            return self.endpoint.parse(response, previous=previous)
        except OAuthError as exc:
            if isinstance(self.source, SharedTokenSource):
                await self.source.refresh_failed(exc)
            raise

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._unsaved is not None:
            async with self._lock:
                if self._unsaved is not None:
                    await self._keep(self._unsaved)
        token = self._token or await self._load()
        if not self.endpoint.fresh(token):
            async with self._lock, self._exclusive():
                # Another task, or another process through the source, may have refreshed
                # already: the token is loaded again under the locks.
                latest = await self._load()
                if not self.endpoint.fresh(latest):
                    response = yield self._refresh_request(latest)
                    latest = await self._parsed(response, latest)
                    self.refreshes += 1
                    await self._keep(latest)
                self._token = token = latest
        self._token = token
        request.headers["Authorization"] = _bearer(token)
        response = yield request
        if response.status_code != 401 or not token.refresh_token:
            return
        async with self._lock, self._exclusive():
            latest = await self._load()
            if latest.access_token == token.access_token:
                refresh_response = yield self._refresh_request(latest)
                latest = await self._parsed(refresh_response, latest)
                self.refreshes += 1
                await self._keep(latest)
            self._token = token = latest
        request.headers["Authorization"] = _bearer(token)
        yield request

    def __repr__(self) -> str:
        return f"OAuth2TokenAuth(token_url={self.endpoint.token_url!r})"
