"""JSON answers in the sandbox's own error format.

The sandbox imitates a third party, so its error shape is deliberately its own and not
interlink's envelope: `{"error": {"code": ..., "message": ..., "details": [...]}}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JSONResponse", "error_body", "error_response"]


class JSONResponse(Response):
    """A JSON response serialised with orjson, which is several times faster than `json`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(
    code: str, message: str, details: Sequence[Mapping[str, str]] | None = None
) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)
    return orjson.dumps({"error": error})


def error_response(
    status_code: int,
    code: str,
    message: str,
    *,
    details: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        error_body(code, message, details),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
