"""Reading the jobs API's answers: its envelopes (`{"status": "success", "data", "meta"}`
and `{"status": "error", "error": {"code", "message", "details"}}`), and a line for an
answer that is not one (a proxy's HTML 502)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from interlink.http import Redactor

__all__ = [
    "detail_text",
    "details_of",
    "envelope_message",
    "excerpt",
    "foreign_message",
    "is_error",
    "is_success",
    "read_json",
    "meta_request_id",
]

EXCERPT = 200
"""Characters of a foreign body kept in an error."""


def read_json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def is_success(body: Any) -> bool:
    return isinstance(body, dict) and body.get("status") == "success" and "data" in body


def is_error(body: Any) -> bool:
    return isinstance(body, dict) and body.get("status") == "error"


def meta_request_id(meta: Any) -> str | None:
    if isinstance(meta, dict):
        value = meta.get("request_id")
        if isinstance(value, str) and value:
            return value[:100]
    return None


def envelope_message(envelope: dict[str, Any], response: httpx.Response) -> str:
    message = envelope.get("message")
    if isinstance(message, str) and message.strip():
        return " ".join(message.split())
    code = envelope.get("code")
    return str(code) if code else f"HTTP {response.status_code}"


def details_of(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def detail_text(detail: dict[str, Any]) -> str:
    field_name = detail.get("field")
    issue = detail.get("issue") or detail.get("message") or ""
    return f"{field_name}: {issue}" if field_name else str(issue)


def foreign_message(response: httpx.Response) -> str:
    """A clear line for an error that did not come from interlink (a proxy's HTML 502)."""
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    reason = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return f"{reason}, not from the interlink API ({kind} body, no error envelope)"


def excerpt(response: httpx.Response, redactor: Redactor) -> str | None:
    if not response.content:
        return None
    text = response.content[: EXCERPT * 4].decode("utf-8", "replace")
    return redactor.text(" ".join(text.split())[:EXCERPT])
