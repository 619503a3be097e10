"""The cron expressions `pipelines.NAME.schedule` accepts, and where seconds go.

Five fields, `minute hour day month weekday`, in UTC, or `@hourly`, `@daily`, `@weekly`,
`@monthly`, `@yearly` (`@annually`). Seconds, when a schedule needs them, are a sixth field
written LAST (`*/15 * * * * 30`: every 15 minutes, at second 30), as croniter reads it.

Quartz and Spring write seconds FIRST (`0 */5 * * * *`). Read the croniter way that one runs
every second, so a sixth field that cannot be meant as seconds is refused with the
expression written the accepted way: `*` (every second; a schedule that means it writes
`*/1`), Quartz's `?`, a day name, or a seventh field (Quartz's year).
"""

from __future__ import annotations

import re

__all__ = ["CRON_ALIASES", "check_cron"]

CRON_ALIASES = frozenset({"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"})

_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
# `*/1` is how a schedule that really means every second says so.
_EVERY_SECOND = {"*"}
# Any start will do for "does it ever come due": a date that exists comes within 8 years.
_SOME_TIME = 1_767_225_600.0  # 2026-01-01 UTC
_FORMS = (
    "5 fields, minute hour day month weekday (UTC), and optionally a 6th for seconds, written last"
)


def check_cron(text: str) -> str:
    """Return `text` (spaces around and between its fields made single) when it is a
    schedule interlink runs, else raise `ValueError` with a message that says which form
    is accepted."""
    parts = text.split()
    # croniter refuses an alias with a space around it; the scheduler must get what passed.
    text = " ".join(parts)
    if text in CRON_ALIASES:
        return text
    if len(parts) == 6 and _seconds_first(parts):
        raise ValueError(_seconds_first_message(text, parts))
    if len(parts) == 7:
        raise ValueError(
            f"expected {_FORMS}; 7 fields (Quartz's seconds first and year last) are not "
            f"read; got {text!r}"
        )
    from croniter import croniter

    if (
        len(parts) not in (5, 6)
        or not all(_FIELD.match(part) for part in parts)
        or not croniter.is_valid(text, second_at_beginning=False)
    ):
        raise ValueError(
            f"expected a cron expression of {_FORMS}, such as '*/15 * * * *', "
            f"'*/15 * * * * 30' or @hourly/@daily; got {text!r}"
        )
    _check_comes_due(text)
    return text


def _check_comes_due(text: str) -> None:
    """Refuse a schedule whose days never exist (`0 0 31 2 *`): croniter accepts it, then
    fails each time it is asked for a tick, and so would every scheduler tick."""
    from croniter import CroniterBadDateError, croniter

    try:
        croniter(text, _SOME_TIME, second_at_beginning=False).get_next(float)
    except CroniterBadDateError:
        raise ValueError(
            f"{text!r} never comes due: no month has that day (day and month fields); "
            f"expected {_FORMS}"
        ) from None


def _seconds_first(parts: list[str]) -> bool:
    last = parts[-1]
    return last in _EVERY_SECOND or "?" in last or any(c.isalpha() for c in last)


def _seconds_first_message(text: str, parts: list[str]) -> str:
    message = (
        f"6 fields: the 6th is seconds, written last (minute hour day month weekday "
        f"second); {parts[-1]!r} there "
    )
    message += (
        "would run it every second (write */1 if you mean that)"
        if parts[-1] in _EVERY_SECOND
        else "is not a second"
    )
    weekday = parts[-1]
    if weekday in ("*", "?"):
        # Quartz's `sec min hour day month ?` moved to interlink's order.
        rest = ["*" if part == "?" else part for part in parts[1:5]]
        # Quartz's `*` seconds is every second, which the last field says as `*/1`.
        second = "*/1" if parts[0] in _EVERY_SECOND else parts[0]
        seconds_last = " ".join([*rest, "*", second])
        five = " ".join([*rest, "*"])
        message += (
            f"; if you meant seconds first (Quartz, Spring), write {seconds_last!r}, or {five!r} "
            "without seconds"
        )
    else:
        message += "; seconds first (Quartz, Spring) is not read: move them to the end"
    return f"{message}; got {text!r}"
