"""A time zone's UTC offsets over a span of time, as a short list both paths can use.

SQLite has no time zones, so the SQL path cannot ask the database what the local time of
an instant is. It does not need to: within a metric's period a zone has a handful of UTC
offsets (two in most zones, one in UTC and in zones without daylight saving time), and the
instants where the offset changes are known in advance. `offset_spans` finds them with
`zoneinfo`; the SQL path turns them into a `CASE` (`_sql_expr`) and the live path looks
them up with `bisect` (`OffsetSpans.local`). Both then agree to the second.

All instants and local times here are whole seconds: local times are "local seconds", the
seconds since 1970-01-01 00:00 of the local wall clock, so local day `n` (days since
1970-01-01) runs from `n * 86400` to `(n + 1) * 86400` whatever the zone.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

__all__ = ["OffsetSpans", "offset_spans"]

_STEP = 6 * 3600
"""How far apart the offset is sampled; no zone changes its offset twice within it."""


def _offset(zone: ZoneInfo, instant: int) -> int:
    moment = datetime.fromtimestamp(instant, UTC).astimezone(zone)
    delta = moment.utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@dataclass(frozen=True)
class OffsetSpans:
    """`offsets[0]` holds before `changes[0]`, `offsets[i]` from `changes[i - 1]` on.

    Outside the span the list was made for, the nearest offset is assumed: callers only
    need exact offsets for instants within it (the rest fall outside the period anyway).
    """

    changes: tuple[int, ...]
    offsets: tuple[int, ...]

    def offset(self, instant: int) -> int:
        return self.offsets[bisect.bisect_right(self.changes, instant)]

    def local(self, instant: int) -> int:
        """The local seconds of a UTC instant."""
        return instant + self.offsets[bisect.bisect_right(self.changes, instant)]

    def first_instant(self, local: int) -> int:
        """The first UTC instant whose local time is `local` or later: where a local day
        starts, even when its midnight falls in a gap (23-hour days) or twice (25 hours)."""
        bounds = (None, *self.changes)
        ends = (*self.changes, None)
        for start, end, offset in zip(bounds, ends, self.offsets, strict=True):
            candidate = local - offset
            if start is not None and candidate < start:
                candidate = start
            if end is None or candidate < end:
                return candidate
        raise AssertionError("unreachable: the last span is open-ended")  # pragma: no cover


def offset_spans(zone: ZoneInfo, start: int, end: int) -> OffsetSpans:
    """The offsets of `zone` from UTC instant `start` to `end`, with the exact second of
    every change between them (found by bisection between samples)."""
    offsets = [_offset(zone, start)]
    changes: list[int] = []
    at = start
    while at < end:
        step_end = min(at + _STEP, end)
        after = _offset(zone, step_end)
        if after != offsets[-1]:
            low, high = at, step_end  # offset(low) is the old one, offset(high) the new
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, middle) == offsets[-1]:
                    low = middle
                else:
                    high = middle
            changes.append(high)
            offsets.append(after)
        at = step_end
    return OffsetSpans(tuple(changes), tuple(offsets))
