"""Build an `ApiClient` and its auth from a connection's configuration."""

from __future__ import annotations

import httpx

from interlink.config import (
    ApiKeyAuthConfig,
    AuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    ConnectionConfig,
    NoAuthConfig,
    OAuth2AuthConfig,
    OAuth2ClientCredentialsConfig,
)
from interlink.types import OAuthToken, TokenSource

from ._auth import ApiKeyAuth, BasicAuth, BearerAuth
from ._client import ApiClient
from ._oauth2 import ClientCredentialsAuth, MemoryTokenSource, OAuth2TokenAuth, TokenEndpoint
from ._ratelimit import RateLimiter
from ._recording import RecordingTransport, ReplayTransport, active_cassette
from ._redact import Redactor
from ._retry import RetryPolicy
from ._transports import create_transport

__all__ = ["build_auth", "client_from_config", "endpoint_url"]


def endpoint_url(url: str, base_url: str) -> str:
    """A token URL as written: absolute, host-relative (`/oauth/token`) or under base_url."""
    if url.startswith(("http://", "https://")):
        return url
    if url.startswith("/"):
        base = httpx.URL(base_url)
        return str(base.copy_with(path=url, query=None, fragment=None))
    return f"{base_url.rstrip('/')}/{url}"


def build_auth(
    name: str,
    config: AuthConfig,
    *,
    base_url: str,
    redactor: Redactor,
    token_source: TokenSource | None = None,
) -> httpx.Auth | None:
    """The httpx auth flow for an `auth:` block; registers its secrets with `redactor`."""
    if isinstance(config, NoAuthConfig):
        return None
    if isinstance(config, ApiKeyAuthConfig):
        key = config.key.get_secret_value()
        redactor.add_secret(key)
        return ApiKeyAuth(key, name=config.name, location=config.location)
    if isinstance(config, BearerAuthConfig):
        token = config.token.get_secret_value()
        redactor.add_secret(token)
        return BearerAuth(token)
    if isinstance(config, BasicAuthConfig):
        password = config.password.get_secret_value()
        auth = BasicAuth(config.username, password)
        redactor.add_secret(password)
        redactor.add_secret(auth.credential)
        return auth
    if isinstance(config, OAuth2ClientCredentialsConfig):
        endpoint = TokenEndpoint(
            endpoint_url(config.token_url, base_url),
            config.client_id,
            config.client_secret.get_secret_value(),
            auth_method=config.auth_method,
            redactor=redactor,
        )
        return ClientCredentialsAuth(
            endpoint, scope=config.scope, audience=config.audience, extra_params=config.extra_params
        )
    if isinstance(config, OAuth2AuthConfig):
        secret = config.client_secret.get_secret_value() if config.client_secret else None
        endpoint = TokenEndpoint(
            endpoint_url(config.token_url, base_url),
            config.client_id,
            secret,
            auth_method=config.auth_method,
            redactor=redactor,
        )
        if token_source is None:
            seed = None
            if config.access_token or config.refresh_token:
                seed = OAuthToken(
                    access_token=config.access_token.get_secret_value()
                    if config.access_token
                    else "",
                    refresh_token=config.refresh_token.get_secret_value()
                    if config.refresh_token
                    else None,
                    # Without an access token the seed is expired, so the first request
                    # refreshes it.
                    expires_at=None if config.access_token else 0.0,
                )
            token_source = MemoryTokenSource(seed)
        return OAuth2TokenAuth(token_source, endpoint, name=name)
    raise TypeError(f"unsupported auth config {type(config).__name__}")


def client_from_config(
    name: str,
    config: ConnectionConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    token_source: TokenSource | None = None,
) -> ApiClient:
    """The ApiClient for connection `name`: its auth, retry policy, rate limit and transport.

    Inside `recording()` / `replaying()` (or with `INTERLINK_RECORD` / `INTERLINK_REPLAY`
    set) the transport records into, or answers from, that cassette.
    """
    redactor = Redactor([config.auth.name] if isinstance(config.auth, ApiKeyAuthConfig) else [])
    # Secret ${VAR}s written into the base URL, a path or params: masked wherever shown,
    # still sent.
    for value in config.secret_values:
        redactor.add_masked(value)
    cassette = active_cassette()
    if cassette is not None and cassette.mode == "replay" and token_source is not None:
        # A replayed refresh answers a masked token: it must never reach the vault.
        token_source = _ReplayedTokens(token_source)
    auth = build_auth(
        name, config.auth, base_url=config.base_url, redactor=redactor, token_source=token_source
    )
    limit = config.rate_limit
    limiter = (
        RateLimiter.shared(
            name, rate=limit.rate, per=limit.per, burst=limit.burst, warn_below=limit.warn_below
        )
        if limit
        else RateLimiter.shared(name)
    )
    retry = config.retry
    timeout = config.timeout
    if cassette is not None and cassette.mode == "replay":
        transport = ReplayTransport(cassette.cassette, redactor=redactor, base_url=config.base_url)
    else:
        if transport is None:
            transport = create_transport(config.transport, max_connections=config.max_connections)
        if cassette is not None:
            transport = RecordingTransport(
                transport,
                cassette.cassette,
                connection=name,
                redactor=redactor,
                base_url=config.base_url,
            )
    return ApiClient(
        config.base_url,
        name=name,
        auth=auth,
        headers=config.headers,
        params=config.params,
        timeout=httpx.Timeout(
            connect=timeout.connect, read=timeout.read, write=timeout.write, pool=timeout.pool
        ),
        retry=RetryPolicy(
            max_attempts=retry.max_attempts,
            base=retry.base,
            cap=retry.cap,
            max_retry_after=retry.max_retry_after,
        ),
        rate_limiter=limiter,
        transport=transport,
        idempotency_header=retry.idempotency_header,
        redactor=redactor,
        allowed_origins=config.allowed_origins,
    )


class _ReplayedTokens:
    """A connected account's token source during a replay: read from the real one, saved
    in memory only (what a replayed token endpoint answers is a cassette's `***`)."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source
        self.token: OAuthToken | None = None

    async def load(self) -> OAuthToken | None:
        return self.token if self.token is not None else await self.source.load()

    async def save(self, token: OAuthToken) -> None:
        self.token = token
