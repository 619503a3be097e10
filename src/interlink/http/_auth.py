"""Static credentials as httpx auth flows: API keys, bearer tokens and HTTP basic."""

from __future__ import annotations

import base64
from collections.abc import Generator
from typing import Literal
from urllib.parse import urlencode

import httpx

__all__ = ["ApiKeyAuth", "BasicAuth", "BearerAuth"]


class ApiKeyAuth(httpx.Auth):
    """Sends an API key in a header (`X-API-Key` by default) or a query parameter.

    In the query, the key is added once at send time: a parameter of the same name already
    in the URL (a next link that echoes the key it was called with) is replaced, never
    repeated.

    ```python
    auth = ApiKeyAuth("k3y", name="api_key", location="query")
    ```
    """

    def __init__(
        self, key: str, *, name: str = "X-API-Key", location: Literal["header", "query"] = "header"
    ) -> None:
        self.key = key
        self.name = name
        self.location = location
        self._pair = urlencode({name: key}).encode("ascii")
        self._name = self._pair.partition(b"=")[0]
        self._prefix = self._name + b"="

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.location == "header":
            request.headers[self.name] = self.key
        else:
            # Appending keeps the other parameters as sent; copy_merge_params would
            # decode and re-encode the whole query.
            query = request.url.query
            if self._name in query:
                query = b"&".join(
                    part
                    for part in query.split(b"&")
                    if part != self._name and not part.startswith(self._prefix)
                )
            pair = self._pair
            request.url = request.url.copy_with(query=query + b"&" + pair if query else pair)
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyAuth(name={self.name!r}, location={self.location!r}, key='***')"


class BearerAuth(httpx.Auth):
    """Sends `Authorization: Bearer <token>` with a fixed token."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"


class BasicAuth(httpx.Auth):
    """HTTP basic authentication (RFC 7617), credentials encoded as UTF-8."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        raw = f"{username}:{password}".encode()
        self.credential = base64.b64encode(raw).decode("ascii")
        """The base64 `user:password` sent in the header; secret like the password."""
        self._header = "Basic " + self.credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"
