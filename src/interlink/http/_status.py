"""Turn failed responses and transport failures into interlink errors, in one place."""

from __future__ import annotations

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

from ._headers import parse_retry_after
from ._redact import Redactor
from ._urls import url_before_auth

__all__ = ["error_for_exception", "error_for_response", "error_message", "request_id_of"]

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


def error_for_response(response: httpx.Response, *, attempts: int, redactor: Redactor) -> ApiError:
    """The ApiError subclass for a 4xx or 5xx response, with its context filled in."""
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else RequestRejectedError)
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
        kwargs["retry_after"] = parse_retry_after(response.headers.get("retry-after"), time.time())
    if status in (408, 425, 500, 502, 503, 504):
        kwargs["retryable"] = True
    return cls(redactor.text(message), **kwargs)


def error_for_exception(
    exc: httpx.TransportError, request: httpx.Request, *, attempts: int, redactor: Redactor
) -> TransportError:
    """A TransportError for an httpx transport failure (no response came back)."""
    kind = type(exc).__name__
    detail = str(exc).strip()
    message = f"{kind}: {detail}" if detail else kind
    return TransportError(
        redactor.text(message),
        method=request.method,
        url=redactor.url(str(url_before_auth(request))),
        attempts=attempts,
        retryable=not isinstance(exc, httpx.UnsupportedProtocol),
    )
