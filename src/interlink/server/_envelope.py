"""The JSON envelope every answer of the API comes in, and the request id it carries.

```
{"status": "success", "data": ..., "meta": {"timestamp": "...Z", "request_id": "req_..."}}
{"status": "error", "error": {"code": "NOT_FOUND", "message": ..., "details": [...]},
 "meta": {...}}
```
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Scope

__all__ = [
    "API_PREFIX",
    "ERROR_CODES",
    "Detail",
    "error_response",
    "meta",
    "new_request_id",
    "request_id",
    "sane_request_id",
    "success",
]

API_PREFIX = "/api/v1"

ERROR_CODES: dict[int, str] = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    431: "HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    505: "HTTP_VERSION_NOT_SUPPORTED",
}
"""The stable `error.code` of each status the API answers with."""

Detail = Mapping[str, str | None]
"""One `{"field": ..., "issue": ...}` of an error's details."""

# A client's own X-Request-ID is echoed when it looks like an id, not like an injection.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def new_request_id() -> str:
    return f"req_{secrets.token_hex(10)}"


def sane_request_id(value: str | None) -> bool:
    return value is not None and _SANE_ID.fullmatch(value) is not None


def request_id(scope: Scope) -> str:
    """The id the request-id middleware gave this request (a fresh one outside it)."""
    state = scope.setdefault("state", {})
    found = state.get("request_id")
    if not isinstance(found, str):
        found = state["request_id"] = new_request_id()
    return found


_second: tuple[int, str] = (-1, "")
"""The last whole second, and its text up to the seconds ("2026-12-05T21:10:51"); replaced
whole, so a thread never reads one second's number with another's text."""


def _timestamp() -> str:
    """Now in UTC to the millisecond, `2026-12-05T21:10:51.123Z`; the date and time are
    formatted once a second (every answer carries one)."""
    global _second
    now = time.time()
    second = int(now)
    cached = _second
    if cached[0] != second:
        text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
        cached = _second = (second, text.removesuffix("+00:00"))
    return f"{cached[1]}.{int((now - second) * 1000):03d}Z"


def meta(scope: Scope, **extra: Any) -> dict[str, Any]:
    return {"timestamp": _timestamp(), "request_id": request_id(scope), **extra}


def success(scope: Scope, data: Any, **extra_meta: Any) -> dict[str, Any]:
    """The success envelope around `data` (routes return it; FastAPI serialises it)."""
    return {"status": "success", "data": data, "meta": meta(scope, **extra_meta)}


def error_response(
    scope: Scope,
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    details: Iterable[Detail] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error envelope as a response; `code` defaults to the status's stable code."""
    if code is None:
        code = ERROR_CODES.get(status_code) or (
            "INTERNAL_ERROR" if status_code >= 500 else "INVALID_REQUEST"
        )
    body = {
        "status": "error",
        "error": {
            "code": code,
            "message": message,
            "details": [{"field": d.get("field"), "issue": d.get("issue") or ""} for d in details],
        },
        "meta": meta(scope),
    }
    response = JSONResponse(body, status_code=status_code, headers=dict(headers or {}))
    response.headers["X-Request-ID"] = request_id(scope)
    return response
