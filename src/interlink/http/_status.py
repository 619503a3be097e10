"""Turn failed responses and transport failures into interlink errors, in one place."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import orjson

from interlink.errors import (
    ApiError,
    AuthError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    TransportError,
)

from ._headers import parse_retry_after, rate_limit_refusal
from ._redact import Redactor
from ._urls import url_before_auth

__all__ = [
    "REDIRECTS",
    "error_for_redirect",
    "error_for_exception",
    "error_for_response",
    "error_message",
    "request_id_of",
    "transport_message",
]

_EXCERPT = 300
_REQUEST_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-correlation-id",
    "cf-ray",
)
_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    429: RateLimitedError,
}


# aiohttp's "Cannot connect to host api.example.com:443 ssl:default [Name or service not
# known]": the host is worth keeping, its SSL context's repr (`ssl:default`,
# `ssl:<ssl.SSLContext object at 0x7f...>`) is not, and the reason reads better plain.
_CANNOT_CONNECT = re.compile(
    r"^Cannot connect to host (?P<host>\S+) ssl:(?:<[^>]*>|\S+) \[(?P<why>.*)\]$", re.S
)
_REASONS = (
    (re.compile(r"connect call failed|connection refused", re.I), "connection refused"),
    (
        re.compile(
            r"name or service not known|nodename nor servname|getaddrinfo failed|"
            r"no address associated|temporary failure in name resolution",
            re.I,
        ),
        "no such host (DNS lookup failed)",
    ),
    (re.compile(r"network is unreachable", re.I), "network unreachable"),
    (re.compile(r"no route to host", re.I), "no route to host"),
    (re.compile(r"certificate verify failed", re.I), "its TLS certificate was refused"),
    (
        re.compile(r"wrong version number|packet length too long|record layer failure", re.I),
        "it does not speak TLS on that port (is the URL http://, not https://?)",
    ),
)
# OpenSSL's wrapping of any other TLS reason: `[SSL: NAME] reason (_ssl.c:1006)`.
_SSL_NOISE = re.compile(r"^\[SSL(?:: \w+)?\]\s*|\s*\(_ssl\.c:\d+\)$")


def transport_message(text: str, *, connecting_to: str | None = None) -> str:
    """A transport library's error text without its noise. `connecting_to` (`host:port`)
    says the text is the reason a connection could not be made (httpx's ConnectError
    gives the reason alone: "[Errno 111] Connection refused").

    ```python
    transport_message("Cannot connect to host 127.0.0.1:9 ssl:default [Connect call failed "
                      "('127.0.0.1', 9)]")
    # 'cannot connect to 127.0.0.1:9: connection refused'
    transport_message("[Errno 111] Connection refused", connecting_to="127.0.0.1:9")
    # 'cannot connect to 127.0.0.1:9: connection refused'
    ```
    """
    text = " ".join(text.split())
    found = _CANNOT_CONNECT.match(text)
    if found is not None:
        host, why = found["host"], found["why"].strip()
    elif connecting_to is not None and text:
        host, why = connecting_to, text
    else:
        return text
    for pattern, plain in _REASONS:
        if pattern.search(why):
            why = plain
            break
    else:
        why = re.sub(r"^\[Errno -?\d+\]\s*", "", why)
        why = _SSL_NOISE.sub("", why) or "no reason given"
    return f"cannot connect to {host}: {why}"


def request_id_of(response: httpx.Response) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return str(value)[:100]
    return None


def _first_text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def error_message(body: Any) -> str | None:
    """The human message of a JSON error body, whatever shape the API uses for it.

    Knows `{"message"}`, `{"error": "..", "error_description": ".."}` (OAuth2),
    `{"error": {"message"}}`, `{"detail"}` and JSON:API `{"errors": [{"title", "detail"}]}`.
    """
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        nested = error_message(error)
        if nested:
            return nested
    description = _first_text(body.get("error_description"))
    if description and isinstance(error, str):
        return f"{error}: {description}"
    for key in ("message", "detail", "error_message", "title", "description"):
        text = _first_text(body.get(key))
        if text:
            return text
    if isinstance(error, str) and error.strip():
        return error.strip()
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict):
            title = _first_text(first.get("title"))
            detail = _first_text(first.get("detail")) or _first_text(first.get("message"))
            if title and detail and title != detail:
                return f"{title}: {detail}"
            return title or detail
        return _first_text(first)
    return None


def _excerpt(response: httpx.Response, redactor: Redactor) -> str | None:
    content = response.content
    if not content:
        return None
    text = content[: _EXCERPT * 4].decode("utf-8", "replace")
    text = " ".join(text.split())[:_EXCERPT]
    return redactor.text(text)


def error_for_response(
    response: httpx.Response, *, attempts: int, redactor: Redactor, now: float | None = None
) -> ApiError:
    """The ApiError subclass for a 4xx or 5xx response, with its context filled in; `now`
    is the wall clock (epoch seconds) a reset time is counted from."""
    status = response.status_code
    wall = time.time() if now is None else now
    limited, hinted = rate_limit_refusal(status, response.headers, wall)
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else RequestRejectedError)
    if limited:  # a 403 that is the server's rate limit (GitHub's) too
        cls = RateLimitedError
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    message = error_message(body) or response.reason_phrase or f"HTTP {status}"
    kwargs: dict[str, Any] = {
        "method": response.request.method,
        "url": redactor.url(str(url_before_auth(response.request))),
        "status_code": status,
        "request_id": request_id_of(response),
        "body_excerpt": _excerpt(response, redactor),
        "attempts": attempts,
    }
    if cls is RateLimitedError:
        kwargs["retry_after"] = hinted
    elif cls is ServerError:
        # A 503 that says when to come back: a job waits that long, not its own backoff.
        kwargs["retry_after"] = parse_retry_after(response.headers.get("retry-after"), wall)
    if status in (408, 425, 500, 502, 503, 504):
        kwargs["retryable"] = True
    return cls(redactor.text(message), **kwargs)


def error_for_exception(
    exc: httpx.TransportError, request: httpx.Request, *, attempts: int, redactor: Redactor
) -> TransportError:
    """A TransportError for an httpx transport failure (no response came back)."""
    kind = type(exc).__name__
    connecting_to = None
    if isinstance(exc, httpx.ConnectError):
        url = request.url
        connecting_to = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    detail = transport_message(str(exc).strip(), connecting_to=connecting_to)
    message = f"{kind}: {detail}" if detail else kind
    return TransportError(
        redactor.text(message),
        method=request.method,
        url=redactor.url(str(url_before_auth(request))),
        attempts=attempts,
        retryable=not isinstance(exc, httpx.UnsupportedProtocol),
    )


REDIRECTS = frozenset({301, 302, 303, 307, 308})


def error_for_redirect(
    response: httpx.Response, *, attempts: int, redactor: Redactor
) -> RequestRejectedError:
    """A redirect the client does not follow (credentials stay with their origin): an
    error that says where it points and what to change, not "the response is not JSON"."""
    location = response.headers.get("location", "")
    target = redactor.url(str(response.request.url.join(location))) if location else "nowhere"
    message = (
        f"HTTP {response.status_code} redirect to {target}: interlink does not follow "
        "redirects; point base_url (or the resource's path) at the new address"
    )
    return RequestRejectedError(
        message,
        method=response.request.method,
        url=redactor.url(str(url_before_auth(response.request))),
        status_code=response.status_code,
        request_id=request_id_of(response),
        attempts=attempts,
    )
