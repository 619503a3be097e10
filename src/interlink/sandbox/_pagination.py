"""Query parameters and links shared by the sandbox's list endpoints.

- Page sizes (`limit`, `per_page`, `page[size]`) default to `DEFAULT_LIMIT` (100); larger
  values than `MAX_LIMIT` (1000) are capped, not refused. A value below the minimum or not
  an integer is a 400.
- `updated_since` is an ISO-8601 time (`2024-01-01T00:00:00Z`; an offset such as
  `+02:00` is converted, a time without one is taken as UTC, fractions of a second round
  up). A listing keeps the records with `updated_at >= updated_since`.
- Cursors are opaque to clients: URL-safe base64 (unpadded) of
  `{"after": <last id>, "since": <normalised updated_since or null>}`.
- Links are absolute and built from the request's own URL, so they are right behind a
  mount prefix too; the other query parameters of the request are kept.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime, timedelta

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "decode_cursor",
    "encode_cursor",
    "link_header",
    "page_size",
    "parse_since",
    "query_int",
    "since_param",
    "total_pages",
    "url_with",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

# "+02:00" sent unencoded in a query string arrives as " 02:00".
_UNENCODED_PLUS = re.compile(r" (\d{2}(?::?\d{2})?)$")


def query_int(request: Request, name: str, default: int, minimum: int) -> int:
    """An integer query parameter of at least `minimum`; 400 when it is anything else."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise HTTPException(400, f"{name} must be an integer of at least {minimum}")
    return value


def page_size(request: Request, name: str) -> int:
    """A page size: `DEFAULT_LIMIT` when absent, capped at `MAX_LIMIT`."""
    return min(query_int(request, name, DEFAULT_LIMIT, minimum=1), MAX_LIMIT)


def parse_since(raw: str) -> str:
    """Normalise an ISO-8601 time to the records' `YYYY-MM-DDTHH:MM:SSZ` (UTC), or ValueError.

    The result compares with `updated_at` strings as the times compare.
    """
    text = _UNENCODED_PLUS.sub(r"+\1", raw.strip())
    if not text:
        raise ValueError("empty time")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        try:
            moment = moment.replace(microsecond=0) + timedelta(seconds=1)
        except OverflowError as error:
            raise ValueError("time out of range") from error
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def since_param(request: Request, name: str = "updated_since") -> str | None:
    """The normalised `updated_since` filter of a request, None without one; 400 if invalid."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_since(raw)
    except ValueError:
        raise HTTPException(
            400, f"{name} must be an ISO-8601 time such as 2024-01-01T00:00:00Z"
        ) from None


def encode_cursor(last_id: int, since: str | None) -> str:
    raw = orjson.dumps({"after": last_id, "since": since})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[int, str | None]:
    """Return `(last_id, since)` of a cursor made by `encode_cursor`; ValueError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise ValueError("not a cursor") from error
    if not isinstance(payload, dict) or set(payload) != {"after", "since"}:
        raise ValueError("not a cursor")
    after, since = payload["after"], payload["since"]
    if type(after) is not int or after < 0:
        raise ValueError("not a cursor")
    if since is not None and (not isinstance(since, str) or parse_since(since) != since):
        raise ValueError("not a cursor")
    return after, since


def total_pages(total: int, per_page: int) -> int:
    return math.ceil(total / per_page)


def url_with(request: Request, **params: str | int) -> str:
    """The absolute URL of this request with `params` set and its other parameters kept."""
    return str(request.url.include_query_params(**params))


def link_header(links: list[tuple[str, str]]) -> str:
    """An RFC 8288 `Link` field value from `(url, rel)` pairs."""
    return ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links)
