"""JSON:API (https://jsonapi.org/format/) answers and error objects for the commerce sandbox.

Every answer has `Content-Type: application/vnd.api+json`; every error is
`{"errors": [{"status": "422", "code": ..., "title": ..., "detail": ..., "source":
{"pointer": "/data/attributes/email"}}]}`, `source` only when a part of the request body
is to blame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

__all__ = [
    "JSONAPI_MEDIA_TYPE",
    "JsonApiError",
    "JsonApiResponse",
    "error_object",
    "errors_response",
]

JSONAPI_MEDIA_TYPE = "application/vnd.api+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
}


class JsonApiResponse(Response):
    """A JSON:API document serialised with orjson."""

    media_type = JSONAPI_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_object(
    status: int, code: str, detail: str, *, pointer: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": str(status),
        "code": code,
        "title": _TITLES.get(status, "Error"),
        "detail": detail,
    }
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return error


class JsonApiError(Exception):
    """Raised while reading a request; the handler answers `errors_response(status, errors)`."""

    def __init__(self, status: int, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)

    @classmethod
    def single(
        cls, status: int, code: str, detail: str, *, pointer: str | None = None
    ) -> JsonApiError:
        return cls(status, [error_object(status, code, detail, pointer=pointer)])

    def response(self) -> Response:
        return errors_response(self.status, self.errors)


def errors_response(
    status: int,
    errors: Sequence[Mapping[str, Any]],
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return JsonApiResponse({"errors": list(errors)}, status_code=status, headers=headers)
