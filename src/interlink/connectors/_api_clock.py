"""The API's clock beside this machine's, read from a response's `Date` header.

A read's signpost (`_cursor`) is the moment it began. An API whose clock runs behind ours
stamps changes made after the read began with times before that moment by our clock, so
the signpost moves back by how far behind it is. The header is to the second and is
written before the answer travels, so it reads a little behind even for a clock in step:
that only moves the signpost back a second more. A clock minutes away gets a warning.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = ["behind_by", "clock_note", "stored_time"]

SKEW = timedelta(minutes=5)
"""How far apart the two clocks must be for the run's warnings to say so."""

_NONE = timedelta(0)


def _api_time(date: str | None) -> datetime | None:
    if not date:
        return None
    try:
        said = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    return said if said.tzinfo is not None else None


def stored_time(value: object) -> datetime | None:
    """A moment a checkpoint stored (`datetime.isoformat()` with its offset), or None for
    anything else: a checkpoint from before it was kept, or one edited by hand."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def behind_by(began: datetime, date: str | None) -> timedelta:
    """How far the API's clock is behind ours (zero or negative), by the `Date` of an answer
    to a request sent at `began`."""
    said = _api_time(date)
    return said - began if said is not None and said < began else _NONE


def clock_note(began: datetime, arrived: datetime, date: str | None) -> str | None:
    """A warning when the API's `Date` is minutes away from this machine's clock: behind
    when it is before the request was sent, ahead when after its answer arrived (a wait
    for a rate limit in between says nothing about the clocks)."""
    said = _api_time(date)
    if said is None:
        return None
    if said < began - SKEW:
        way, apart = "behind", began - said
    elif said > arrived + SKEW:
        way, apart = "ahead of", said - arrived
    else:
        return None
    return (
        f"the API's clock (Date: {date}) is {_span(apart)} {way} this machine's; the "
        "cursor stops before the earlier of the two, so records changed since are read "
        "again next time"
    )


def _span(apart: timedelta) -> str:
    minutes = apart.total_seconds() / 60
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} hours"
    return f"{minutes / 1440:.0f} days"
