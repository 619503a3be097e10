"""Credential checks of a sandbox API: a bearer token and/or an API key.

`Authorization: Bearer <token>` follows RFC 6750; the API key may come in the `X-API-Key`
header or the `api_key` query parameter, as many SaaS APIs accept both. When both a token
and a key are configured, a request needs both.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from ._admin import SandboxStats, is_admin_path
from ._responses import error_response

__all__ = ["AuthMiddleware"]

_REALM = 'realm="sandbox"'


def _matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class AuthMiddleware:
    """ASGI middleware that answers 401 with `WWW-Authenticate` unless credentials match."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        stats: SandboxStats,
        token: str | None = None,
        api_key: str | None = None,
    ) -> None:
        self.app = app
        self.stats = stats
        self.token = token
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_admin_path(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.token is not None:
            scheme, _, credentials = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not credentials:
                await self._reject(
                    scope, receive, send, f"Bearer {_REALM}", "Missing bearer token."
                )
                return
            if not _matches(credentials.strip(), self.token):
                challenge = f'Bearer {_REALM}, error="invalid_token"'
                await self._reject(scope, receive, send, challenge, "Invalid bearer token.")
                return
        if self.api_key is not None:
            given = headers.get("x-api-key")
            if given is None:
                given = QueryParams(scope["query_string"]).get("api_key")
            if given is None:
                await self._reject(scope, receive, send, f"ApiKey {_REALM}", "Missing API key.")
                return
            if not _matches(given, self.api_key):
                await self._reject(scope, receive, send, f"ApiKey {_REALM}", "Invalid API key.")
                return
        await self.app(scope, receive, send)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, challenge: str, message: str
    ) -> None:
        self.stats.unauthorized += 1
        response = error_response(
            401, "unauthorized", message, headers={"WWW-Authenticate": challenge}
        )
        await response(scope, receive, send)
