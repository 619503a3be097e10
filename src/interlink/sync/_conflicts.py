"""When both sides changed a record since the last sync, who wins. Pure decisions."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

__all__ = ["Decision", "changed_since", "decide", "newer"]

Decision = Literal["write", "keep", "park"]


def _moment(value: Any) -> Any:
    """An aware datetime for an ISO-8601 text, a datetime or a date (naive ones are UTC);
    anything else as it is."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value


def newer(source_time: Any, target_time: Any) -> bool:
    """True when the source's timestamp is not older than the target's.

    ISO-8601 texts, datetimes and dates are compared as instants (`...Z` and `...+00:00`
    agree; naive ones are UTC, as a SQL source's often are); a missing
    target time loses, a missing source time loses to a present target time.
    """
    if target_time is None:
        return True
    if source_time is None:
        return False
    a, b = _moment(source_time), _moment(target_time)
    try:
        return bool(a >= b)
    except TypeError:
        return str(source_time) >= str(target_time)


def changed_since(saved: str | None, current: str | None) -> bool:
    """Whether the target changed since interlink bound it at version `saved`.

    A version missing on either side (a binding saved without one, or a target whose
    version cannot be read now) counts as a change: only a version that proves the target
    is as interlink left it lets the source be written over it without asking the policy.
    """
    return saved is None or current is None or saved != current


def decide(
    policy: str,
    *,
    source_changed: bool,
    target_changed: bool,
    source_time: Any = None,
    target_time: Any = None,
) -> Decision:
    """`write` the source over the target, `keep` the target as it is, or `park` the pair.

    Only a record changed on both sides since the last sync is a conflict; otherwise the
    side that changed wins (nothing to do when only the target changed).
    """
    if not source_changed:
        return "keep"
    if not target_changed:
        return "write"
    if policy == "source_wins":
        return "write"
    if policy == "target_wins":
        return "keep"
    if policy == "newest_wins":
        return "write" if newer(source_time, target_time) else "keep"
    if policy == "manual":
        return "park"
    raise ValueError(f"unknown conflict policy {policy!r}")
