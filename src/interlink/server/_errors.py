"""Every failure as an error envelope: FastAPI's own 404/405/422 and the API's problems.

Routes raise `ApiProblem` (or one of its helpers) for an answer they mean to give; the
handlers here turn it, Starlette's `HTTPException` and FastAPI's `RequestValidationError`
into the one error format. Anything else is a bug, answered by the outermost middleware
(`_middleware.UnhandledErrorMiddleware`) with INTERNAL_ERROR and the request id only.
"""

from __future__ import annotations

import email.message
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ._envelope import Detail, error_response
from ._routes import RouteIndex

__all__ = [
    "ApiProblem",
    "conflict",
    "install_error_handlers",
    "invalid_field",
    "not_found",
]

_MESSAGES = {
    400: "The request is malformed.",
    401: "A valid API key is required (Authorization: Bearer <api key>).",
    403: "This API key's scope does not allow this request.",
    404: "There is nothing at this address.",
    405: "This method is not allowed here.",
    409: "The request conflicts with the resource's current state.",
    413: "The request body is too large.",
    422: "The request has invalid fields.",
    429: "Too many requests; slow down.",
}


class ApiProblem(Exception):
    """An answer a route gives on purpose: a status, a stable code, a message, details."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        details: Iterable[Detail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.code = code
        self.details = list(details)
        self.headers = dict(headers or {})
        super().__init__(message)


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, f"{what} not found.")


def conflict(message: str) -> ApiProblem:
    return ApiProblem(409, message)


def invalid_field(field: str, issue: str) -> ApiProblem:
    return ApiProblem(422, _MESSAGES[422], details=[{"field": field, "issue": issue}])


def _field(loc: Sequence[Any]) -> str:
    # ("body", "pipeline") -> "pipeline"; ("query", "limit") -> "limit"; ("body",) -> "body"
    parts = [str(part) for part in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    broken = [error for error in errors if error.get("type") == "json_invalid"]
    if broken:
        reason = str(broken[0].get("ctx", {}).get("error", ""))
        return error_response(
            request.scope,
            400,
            "The request body is not valid JSON.",
            details=[{"field": "body", "issue": reason or "JSON decode error"}],
        )
    about_body = any(tuple(error.get("loc", ()))[:1] == ("body",) for error in errors)
    body_sent = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if about_body and body_sent and not _is_json(request.headers.get("content-type")):
        return error_response(
            request.scope,
            400,
            "The request body must be JSON (Content-Type: application/json).",
            details=[{"field": "Content-Type", "issue": "expected application/json"}],
        )
    details = [
        {"field": _field(error.get("loc", ()))[:_FIELD_CHARS], "issue": str(error["msg"])}
        for error in errors[:_MAX_DETAILS]
    ]
    if len(errors) > _MAX_DETAILS:
        # A body of thousands of made-up keys gets a short answer, not its own echo.
        more = len(errors) - _MAX_DETAILS
        details.append({"field": "body", "issue": f"and {more} more problems"})
    return error_response(request.scope, 422, _MESSAGES[422], details=details)


_MAX_DETAILS = 20
"""Problems listed one by one in a 422; the rest are counted."""
_FIELD_CHARS = 120


def _http_error(index: RouteIndex) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        message = _MESSAGES.get(status) or (
            exc.detail if isinstance(exc.detail, str) else "The request failed."
        )
        headers = dict(exc.headers or {})
        if status == 405:
            headers["Allow"] = index.allow(request.url.path) or headers.get("Allow", "")
        return error_response(request.scope, status, message, headers=headers)

    return handle


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return error_response(
        request.scope,
        exc.status_code,
        exc.message,
        code=exc.code,
        details=exc.details,
        headers=exc.headers,
    )


def install_error_handlers(app: FastAPI, routes: RouteIndex) -> None:
    """Answer validation errors, HTTP errors and `ApiProblem`s in the error envelope;
    `routes` is what a 405's Allow header lists methods from."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error(routes))
    app.add_exception_handler(ApiProblem, _problem)
