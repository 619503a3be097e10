"""Parse what servers say about waiting: `Retry-After` and the rate-limit header families.

Pure functions on header values; nothing here sleeps or sends. Malformed values are ignored
(return None), as the IETF rate-limit draft requires of clients.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["RateLimitInfo", "parse_rate_limit", "parse_retry_after", "rate_limit_refusal"]

_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
# Epoch seconds of 2001-09-09; any reset value above this is a point in time, not a delta.
_EPOCH_THRESHOLD = 1_000_000_000
_EPOCH_MS_THRESHOLD = 1_000_000_000_000


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    match = _NUMBER.match(value)
    if not match:
        return None
    number = float(match.group(1))
    return number if math.isfinite(number) else None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait according to a `Retry-After` value, or None when it is unusable.

    RFC 9110 section 10.2.3 allows delay-seconds or an HTTP-date; a date in the past means
    zero. `now` is the wall clock in epoch seconds.
    """
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        # An HTTP-date is always GMT; a date without a zone is not one.
        return None
    return max(0.0, when.timestamp() - now)


def _reset_delay(value: str | None, now: float) -> float | None:
    """A reset given as delta seconds, epoch seconds or epoch milliseconds -> seconds from now."""
    number = _number(value)
    if number is None:
        return None
    if number >= _EPOCH_MS_THRESHOLD:
        return max(0.0, number / 1000.0 - now)
    if number >= _EPOCH_THRESHOLD:
        return max(0.0, number - now)
    return number


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a response says about the server's rate limit: requests left and when that resets."""

    remaining: int
    reset_after: float
    """Seconds from the response until the quota is replenished."""
    limit: int | None = None


_SF_ITEM = re.compile(r'^\s*(?:"[^"]*"|[A-Za-z*][A-Za-z0-9_.*:/%-]*)\s*((?:;[^;,]*)*)\s*$')


def _sf_params(member: str) -> dict[str, str] | None:
    """Parameters of one structured-field list member (`"default";r=5;t=30`) or None."""
    match = _SF_ITEM.match(member)
    if not match:
        return None
    params: dict[str, str] = {}
    for part in match.group(1).split(";"):
        if not part.strip():
            continue
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip()
    return params


def _ietf_structured(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """`RateLimit: "name";r=R;t=T` (draft-ietf-httpapi-ratelimit-headers-08 and later)."""
    value = headers.get("ratelimit")
    if not value:
        return None
    best: RateLimitInfo | None = None
    for member in value.split(","):
        params = _sf_params(member)
        if not params or "r" not in params:
            continue
        remaining = _number(params.get("r"))
        reset = _number(params.get("t", "0"))
        if remaining is None or reset is None:
            continue
        info = RateLimitInfo(remaining=int(remaining), reset_after=reset)
        # The most constraining policy wins: fewest left, then the longest wait.
        if best is None or (info.remaining, -info.reset_after) < (
            best.remaining,
            -best.reset_after,
        ):
            best = info
    if best is None:
        return None
    policy = headers.get("ratelimit-policy")
    if policy:
        quotas = []
        for member in policy.split(","):
            params = _sf_params(member)
            quota = _number(params.get("q")) if params else None
            if quota is not None:
                quotas.append(int(quota))
        if quotas:
            best = RateLimitInfo(best.remaining, best.reset_after, min(quotas))
    return best


def _ietf_legacy_inline(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """`RateLimit: limit=100, remaining=50, reset=30` (drafts up to -07)."""
    value = headers.get("ratelimit")
    if not value or "remaining" not in value:
        return None
    fields: dict[str, str] = {}
    for part in re.split(r"[,;]", value):
        key, _, val = part.partition("=")
        fields[key.strip().lower()] = val.strip()
    remaining = _number(fields.get("remaining"))
    reset = _number(fields.get("reset", "0"))
    if remaining is None or reset is None:
        return None
    limit = _number(fields.get("limit"))
    return RateLimitInfo(int(remaining), reset, int(limit) if limit is not None else None)


def _separate_fields(headers: Mapping[str, str], prefix: str, now: float) -> RateLimitInfo | None:
    """`X-RateLimit-Limit/-Remaining/-Reset` or `RateLimit-Limit/-Remaining/-Reset`."""
    remaining = _number(headers.get(f"{prefix}remaining"))
    if remaining is None:
        return None
    reset = _reset_delay(headers.get(f"{prefix}reset"), now)
    limit = _number(headers.get(f"{prefix}limit"))
    return RateLimitInfo(
        remaining=int(remaining),
        reset_after=reset if reset is not None else 0.0,
        limit=int(limit) if limit is not None else None,
    )


def parse_rate_limit(headers: Mapping[str, str], now: float) -> RateLimitInfo | None:
    """The rate-limit state a response announces, from whichever header family it uses.

    `headers` must look names up case-insensitively (httpx.Headers does); `now` is the wall
    clock in epoch seconds, for resets given as a point in time. When a server sends several
    families, the most constraining answer wins, with the most precise reset.
    """
    found = [
        info
        for info in (
            _ietf_structured(headers),
            _ietf_legacy_inline(headers),
            _separate_fields(headers, "ratelimit-", now),
            _separate_fields(headers, "x-ratelimit-", now),
        )
        if info is not None
    ]
    if not found:
        return None
    # Several families describe the same quota: the fewest requests left is the binding
    # one, and among equals the finest reset wins (the IETF field's `t` is whole seconds,
    # an epoch X-RateLimit-Reset is often exact to the millisecond).
    best = min(found, key=lambda info: (info.remaining, info.reset_after))
    limit = next((info.limit for info in found if info.limit is not None), None)
    return RateLimitInfo(best.remaining, best.reset_after, best.limit or limit)


def rate_limit_refusal(
    status: int, headers: Mapping[str, str], now: float
) -> tuple[bool, float | None]:
    """Whether a response is the server refusing for its rate limit, and the seconds it
    asks to wait (None: it does not say). A 429; or a 403 that says so, as GitHub's do: a
    `Retry-After` (its secondary limits), or a quota at zero until `X-RateLimit-Reset`
    (its primary one). Any other 403 is a refusal of the request itself."""
    if status == 429:
        return True, parse_retry_after(headers.get("retry-after"), now)
    if status != 403:
        return False, None
    if headers.get("retry-after") is not None:
        return True, parse_retry_after(headers.get("retry-after"), now)
    info = parse_rate_limit(headers, now)
    if info is not None and info.remaining <= 0:
        return True, info.reset_after
    return False, None
