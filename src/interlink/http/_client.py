"""`ApiClient`: the one way interlink talks HTTP to a connection.

It is built on httpx's request, response, auth and transport types, but drives them itself
instead of going through `httpx.AsyncClient`: the client's cookie, redirect and hook
machinery costs more than the request on small calls (docs/benchmarks.md), and interlink
wants none of it (redirects are an SSRF path; APIs authenticate with credentials, not
cookies). Credentials go only to the connection's own origin: the auth flow, the connection's
headers and its parameters are applied to requests for `base_url`'s origin (scheme, host,
port) or an `allowed_origins` entry, and a request anywhere else goes out without them.
The stack under it:

    ApiClient (URL, origin, headers, idempotency key, auth flow, status -> error)
      -> RetryTransport (backoff, Retry-After, one log line per attempt)
        -> RateLimitTransport (token bucket, server rate-limit headers)
          -> AutoTransport (threads, then aiohttp) | AiohttpTransport | ThreadTransport
          | httpx.AsyncHTTPTransport | httpx.MockTransport
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

import httpx
import orjson

from interlink._version import __version__
from interlink.errors import ApiError, PaginationError
from interlink.types import Clock, Sleep, WallClock

from ._auth import ApiKeyAuth, BasicAuth
from ._auto_transport import AutoTransport
from ._ratelimit import RateLimiter, RateLimitTransport
from ._redact import Redactor
from ._retry import ATTEMPTS, RETRY_SAFE, RetryBudget, RetryPolicy, RetryTransport
from ._status import REDIRECTS, error_for_exception, error_for_redirect, error_for_response
from ._urls import URL_BEFORE_AUTH, OriginPolicy, strip_query_params, url_before_auth

if TYPE_CHECKING:
    from interlink.config import ConnectionConfig
    from interlink.types import TokenSource

__all__ = ["DEFAULT_TIMEOUT", "ApiClient", "ClientStats"]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)

_DEFAULT_HEADERS = {
    "User-Agent": f"interlink/{__version__}",
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
}
_KEYED_METHODS = frozenset({"POST", "PATCH"})
# Connection headers whose values describe the request, never a credential.
_PLAIN_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "content-type", "user-agent", "cache-control"}
)
# Shorter values would mask innocent text ("json", "v2") wherever they appear.
_SECRET_MIN = 8
_URL_CACHE_SIZE = 1024

_TRUSTED = "interlink.trusted_url"
"""Request extension: the URL `build_request` found on the connection's origins."""


def _query_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _encode_query(params: Mapping[str, Any]) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            pairs.extend((key, _query_value(v)) for v in value)
        else:
            pairs.append((key, _query_value(value)))
    return urlencode(pairs)


@dataclass
class ClientStats:
    """Counters of one client since it was created."""

    requests: int = 0
    attempts: int = 0
    retries: int = 0
    retry_wait_s: float = 0.0
    rate_limit_wait_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


class ApiClient:
    """An async HTTP client for one connection: pooling, auth, retries, rate limits, errors.

    Use it as an async context manager so its connections are closed:

    ```python
    async with ApiClient("https://api.example.com/v1", auth=BearerAuth(token)) as api:
        response = await api.get("/customers", params={"limit": 100})
        customers = await api.get_json("/customers/42")
        await api.request_json("DELETE", "/customers/42")  # None for a 204
    ```

    Failed responses raise the matching `ApiError` subclass (pass `raise_for_status=False`
    to get the response instead); transport failures raise `TransportError`. Both carry the
    number of attempts made, and the URL as it was before auth (never an API key).

    Credentials (the auth flow, and the connection's own `headers` and `params`) go only
    to the origin of `base_url` and to `allowed_origins`; a request for any other origin
    is sent with the default headers and nothing of the connection's.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "",
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        idempotency_header: str | None = None,
        redactor: Redactor | None = None,
        allowed_origins: Iterable[str] = (),
        clock: Clock = time.monotonic,
        wall: WallClock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.redactor = redactor or Redactor()
        base_url, auth = _userinfo_as_basic_auth(base_url, auth, self.redactor)
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        if isinstance(auth, ApiKeyAuth):
            if auth.location == "query":
                self.redactor.add_param(auth.name)
            self.redactor.add_secret(auth.key)
        self.origins = OriginPolicy(self.base_url, allowed_origins)
        self.headers = {**_DEFAULT_HEADERS, **(headers or {})}
        self.params = dict(params or {})
        self._own_credentials(headers or {})
        self.idempotency_header = idempotency_header
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout)
        self._timeout = timeout.as_dict()
        self.rate_limiter = rate_limiter or RateLimiter(
            name=name, clock=clock, wall=wall, sleep=sleep
        )
        base = transport if transport is not None else AutoTransport()
        self._retry = RetryTransport(
            RateLimitTransport(base, self.rate_limiter),
            retry,
            idempotency_header=idempotency_header,
            budget=RetryBudget(),
            redactor=self.redactor,
            clock=clock,
            wall=wall,
            sleep=sleep,
        )
        self._stack: httpx.AsyncBaseTransport = self._retry
        self._wall = wall
        self._requests = 0
        self._closed = False
        self._urls: dict[str, httpx.URL] = {}
        self._trusted: dict[str, bool] = {}
        self._stripped = ""

    @classmethod
    def from_config(
        cls,
        name: str,
        config: ConnectionConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        token_source: TokenSource | None = None,
    ) -> ApiClient:
        """The client for connection `name` as `interlink.yaml` describes it."""
        from ._factory import client_from_config

        return client_from_config(name, config, transport=transport, token_source=token_source)

    # -- requests ---------------------------------------------------------------------------

    def build_request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry_safe: bool = False,
    ) -> httpx.Request:
        """The request `request()` would send, with defaults, body and idempotency key set."""
        method = method.upper()
        trusted = True
        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}/{url.lstrip('/')}" if url else self.base_url
        else:
            trusted = self.allows(url)
        own = self.headers if trusted else _DEFAULT_HEADERS
        merged = {**own, **headers} if headers else dict(own)
        if json is not None:
            content = orjson.dumps(json)
            if not any(k.lower() == "content-type" for k in merged):
                merged["Content-Type"] = "application/json"
        if method in _KEYED_METHODS and (self.idempotency_header or idempotency_key):
            header = self.idempotency_header or "Idempotency-Key"
            if not any(k.lower() == header.lower() for k in merged):
                merged[header] = idempotency_key or uuid.uuid4().hex
        own_params = self.params if trusted else {}
        query = {**own_params, **params} if params else own_params
        # What is stored and shown: the connection's own params but those holding a
        # secret (an `appid` key), then the call's.
        plain = {k: v for k, v in own_params.items() if not self.redactor.is_secret(v)}
        visible = {**plain, **params} if params else plain
        shown = url
        if visible:
            shown += ("&" if "?" in url else "?") + _encode_query(visible)
        if query:
            url += ("&" if "?" in url else "?") + _encode_query(query)
        timeout_ext = self._timeout
        if timeout is not None:
            if not isinstance(timeout, httpx.Timeout):
                timeout = httpx.Timeout(timeout)
            timeout_ext = timeout.as_dict()
        extensions: dict[str, Any] = {"timeout": timeout_ext}
        if retry_safe:
            extensions[RETRY_SAFE] = True
        request = httpx.Request(
            method, self._parse_url(url), headers=merged, content=content, extensions=extensions
        )
        if trusted:
            request.extensions[_TRUSTED] = request.url
        # Stored and shown without the connection's auth or secret params.
        request.extensions[URL_BEFORE_AUTH] = (
            request.url if shown == url else self._parse_url(shown)
        )
        return request

    def _own_credentials(self, headers: Mapping[str, str]) -> None:
        """The connection's own `params:` and `headers:` often carry a key (`appid=`,
        `X-Api-Key:`): their values are masked wherever they could show, and its params are
        taken out of the links a server hands back (they are added again at send time, so
        a link that echoes them never carries them twice)."""
        for name, value in self.params.items():
            self.redactor.add_own_param(name)
            if isinstance(value, str) and len(value) >= _SECRET_MIN:
                self.redactor.add_secret(value)
        for name, value in headers.items():
            if name.lower() not in _PLAIN_HEADERS and len(value) >= _SECRET_MIN:
                self.redactor.add_secret(value)

    @property
    def origin(self) -> str:
        """The connection's origin, `scheme://host[:port]` of its base URL."""
        return self.origins.origin

    def allows(self, url: str | httpx.URL) -> bool:
        """Whether the connection's credentials may go to `url`: its origin is the base
        URL's or an allowed one. A relative URL is under the base URL."""
        if isinstance(url, httpx.URL):
            return self.origins.allows(url)
        if not url.startswith(("http://", "https://")) and "://" not in url:
            return True
        # Links recur (every page of a read has the same few origins): decide once per URL
        # up to its query.
        key = url.partition("?")[0]
        allowed = self._trusted.get(key)
        if allowed is None:
            if len(self._trusted) >= _URL_CACHE_SIZE:
                self._trusted.clear()
            try:
                allowed = self.origins.allows(httpx.URL(key))
            except httpx.InvalidURL:
                allowed = False
            self._trusted[key] = allowed
        return allowed

    def strip_credentials(self, url: str) -> str:
        """`url` without the connection's own credential: the `in: query` API key, any
        parameter whose value is a secret of the connection, and userinfo.

        For links a server hands back (a next page that echoes the key it was called
        with): what is stored and followed is the link without it; the key is added
        again, once, when the request is sent.
        """
        if url is self._stripped:
            return url  # the same link again: the reader vets what the paginator resolved
        stripped = strip_query_params(url, self.redactor.is_credential)
        if self.redactor.holds_secret(unquote(unquote(stripped))):
            # Echoed somewhere no parameter can be taken out (a path segment, a fragment,
            # inside another parameter's value): never stored, never followed.
            raise PaginationError(
                f"connection {self.name or self.origin}: the API's link carries the "
                "connection's credential where it cannot be taken out (outside its own query "
                "parameter); refusing to store or follow it"
            )
        self._stripped = stripped
        return stripped

    def _parse_url(self, url: str) -> httpx.URL:
        # Parsing a URL is the biggest cost of building a request (~15 us, more with params
        # merged by httpx); the same URLs recur (pages, polling), so keep the parsed ones.
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        raise_for_status: bool = True,
        retry_safe: bool = False,
    ) -> httpx.Response:
        """Send one logical request (retried as the policy allows) and return its response.

        `url` is relative to the base URL unless it is absolute. `json` is serialised with
        orjson. POST and PATCH carry an idempotency key when the connection names an
        idempotency header or `idempotency_key` is given; the same key is sent on every
        attempt. `retry_safe=True` declares a POST without side effects (a GraphQL query, a
        SOAP read) so it is retried like a GET.
        """
        request = self.build_request(
            method,
            url,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=idempotency_key,
            timeout=timeout,
            retry_safe=retry_safe,
        )
        return await self.send(request, raise_for_status=raise_for_status)

    async def send(
        self, request: httpx.Request, *, raise_for_status: bool = True
    ) -> httpx.Response:
        """Send a built request through auth, retries and rate limits."""
        if self._closed:
            raise RuntimeError(f"ApiClient {self.name or self.base_url} is closed")
        self._requests += 1
        request.extensions.setdefault(URL_BEFORE_AUTH, request.url)
        try:
            response = await self._send_handling_auth(request)
        except httpx.TransportError as exc:
            try:
                failed = exc.request
            except RuntimeError:
                failed = request
            attempts = int(failed.extensions.get(ATTEMPTS, 1))
            # Not chained: the httpx error's message and request still hold the raw URL
            # (an API key in the query), and a logged traceback would print it. Ours names
            # the error type and carries its message redacted.
            raise error_for_exception(
                exc, failed, attempts=attempts, redactor=self.redactor
            ) from None
        if raise_for_status and response.status_code >= 300:
            attempts = int(response.request.extensions.get(ATTEMPTS, 1))
            if response.status_code >= 400:
                raise error_for_response(
                    response, attempts=attempts, redactor=self.redactor, now=self._wall()
                )
            if response.status_code in REDIRECTS:
                raise error_for_redirect(response, attempts=attempts, redactor=self.redactor)
        return response

    async def _send_handling_auth(self, request: httpx.Request) -> httpx.Response:
        if self.auth is None:
            return await self._send_single(request)
        if request.extensions.get(_TRUSTED) is not request.url and not self.origins.allows(
            request.url
        ):
            # Another origin: the credentials stay home (a next link, a document's import).
            return await self._send_single(request)
        flow = self.auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            while True:
                response = await self._send_single(request)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
        finally:
            await flow.aclose()

    async def _send_single(self, request: httpx.Request) -> httpx.Response:
        if "timeout" not in request.extensions:
            request.extensions["timeout"] = self._timeout
        response = await self._stack.handle_async_request(request)
        response.request = request
        await response.aread()
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET and parse the body as JSON (orjson); a body that is not JSON is an ApiError."""
        response = await self.request("GET", url, **kwargs)
        return self.parse_json(response)

    async def request_json(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send a request (the arguments of `request()`) and return its JSON body: None for
        a 204 or an empty body, the parsed JSON otherwise.

        ```python
        product = await api.request_json("GET", "/products/123")
        await api.request_json("DELETE", "/products/123")  # None: 204 No Content
        ```

        A body that is not JSON is an ApiError naming the URL; failed statuses raise as
        `request()` does.
        """
        response = await self.request(method, url, **kwargs)
        if response.status_code == 204 or not response.content.strip():
            return None
        return self.parse_json(response)

    def parse_json(self, response: httpx.Response) -> Any:
        """The body of `response` parsed as JSON (orjson); a body that is not JSON is an
        ApiError naming the request."""
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise ApiError(
                f"the response is not JSON ({exc})",
                method=response.request.method,
                url=self.redactor.url(str(url_before_auth(response.request))),
                status_code=response.status_code,
                body_excerpt=self.redactor.text(response.content[:200].decode("utf-8", "replace")),
                attempts=int(response.request.extensions.get(ATTEMPTS, 1)),
            ) from None

    # -- lifecycle and stats ----------------------------------------------------------------

    @property
    def stats(self) -> ClientStats:
        retry = self._retry
        return ClientStats(
            requests=self._requests,
            attempts=retry.attempts,
            retries=retry.retries,
            retry_wait_s=retry.waited,
            rate_limit_wait_s=self.rate_limiter.waited,
            statuses=Counter(retry.statuses),
            errors=Counter(retry.errors),
        )

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._stack.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"ApiClient(name={self.name!r}, base_url={self.redactor.url(self.base_url)!r})"


def _userinfo_as_basic_auth(
    base_url: str, auth: httpx.Auth | None, redactor: Redactor
) -> tuple[str, httpx.Auth | None]:
    """`https://user:pass@host/api` is basic auth on `https://host/api`: sent on every
    request to the origin (next links too), never in a URL; with another auth, refused."""
    url = httpx.URL(base_url)
    if not url.userinfo:
        return base_url, auth
    if auth is not None:
        raise ValueError(
            "the base URL carries user:password and the connection has an auth: give the "
            "credentials once"
        )
    username, password = unquote(url.username), unquote(url.password or "")
    basic = BasicAuth(username, password)
    # What is sent (base64 of user:password) is masked too, should a server echo it; with
    # no password (`https://sk_live_...:@host`, as Stripe takes its key) the user is the
    # secret.
    redactor.add_secret(basic.credential)
    redactor.add_secret(password or username)
    return str(url.copy_with(username=None, password=None)), basic
