"""The buckets of a period: local days, ISO weeks or calendar months in the metric's zone.

Every bucket has a label (`2026-03-29`, `2026-W13`, `2026-03`), its first and last local
date, and the UTC instants where it starts and ends. A day is the zone's day: in
Europe/Berlin 2026-03-29 runs from 2026-03-28T23:00Z to 2026-03-29T22:00Z, 23 hours, and
2026-10-25 lasts 25.

For weeks and months the first and last buckets are whole: a period from Wednesday
2026-03-04 to Tuesday 2026-03-31 by week covers Monday 2026-03-02 to Sunday 2026-04-05,
and by month 2026-03-01 to 2026-03-31. Every bucket then holds the same kind of span, and
a week's or month's number never depends on where the period happened to start.

Rows are placed by their local seconds (see `_zone`): day index `(local - local_start) //
86400`, then the bucket of that day (`day_bucket`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ._period import Period
from ._zone import OffsetSpans, offset_spans

__all__ = ["DAY", "MARGIN", "Bucket", "BucketPlan", "plan_buckets"]

DAY = 86_400
MARGIN = 2 * DAY
"""How far beyond the period the zone's offsets are known, and how far the SQL path's
index-friendly prefilter reaches: more than any zone's distance from UTC."""

_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Bucket:
    label: str
    first: date
    last: date
    start: int
    """The UTC instant (epoch seconds) where the bucket's first local day starts."""
    end: int
    """The UTC instant where the day after its last one starts."""

    def iso_start(self) -> str:
        return _iso(self.start)

    def iso_end(self) -> str:
        return _iso(self.end)


def _iso(instant: int) -> str:
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_day(value: date) -> int:
    """Days since 1970-01-01."""
    return (value - _EPOCH).days


@dataclass(frozen=True)
class BucketPlan:
    """The buckets of one request, and what both paths need to place a row in one."""

    granularity: str
    timezone: str
    period: Period
    """The dates asked for; the buckets may reach beyond them to whole weeks or months."""
    buckets: tuple[Bucket, ...]
    local_start: int
    """Local seconds where the first bucket starts."""
    local_end: int
    """Local seconds where the last bucket ends."""
    day_bucket: tuple[int, ...]
    """The bucket of each local day, by day index from the first bucket's first day."""
    bucket_first_day: tuple[int, ...]
    """The day index each bucket starts at."""
    spans: OffsetSpans

    @property
    def first(self) -> date:
        return self.buckets[0].first

    @property
    def last(self) -> date:
        return self.buckets[-1].last

    @property
    def labels(self) -> list[str]:
        return [bucket.label for bucket in self.buckets]

    def bucket_of(self, local: int) -> int | None:
        """The index of the bucket local seconds `local` fall in, or None outside them."""
        if local < self.local_start or local >= self.local_end:
            return None
        return self.day_bucket[(local - self.local_start) // DAY]


def _label(first: date, granularity: str) -> str:
    if granularity == "week":
        iso = first.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if granularity == "month":
        return f"{first.year:04d}-{first.month:02d}"
    return first.isoformat()


def _next_start(first: date, granularity: str) -> date:
    if granularity == "week":
        return first + timedelta(days=7)
    if granularity == "month":
        return date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first + timedelta(days=1)


def _widen(period: Period, granularity: str) -> tuple[date, date]:
    start, end = period.start, period.end
    if granularity == "week":
        start -= timedelta(days=start.weekday())
        end += timedelta(days=6 - end.weekday())
    elif granularity == "month":
        start = start.replace(day=1)
        end = _next_start(end.replace(day=1), "month") - timedelta(days=1)
    return start, end


def plan_buckets(period: Period, granularity: str, timezone: str) -> BucketPlan:
    """Every bucket of `period` at `granularity` in `timezone` (an IANA name)."""
    first, last = _widen(period, granularity)
    local_start = local_day(first) * DAY
    local_end = (local_day(last) + 1) * DAY
    spans = offset_spans(ZoneInfo(timezone), local_start - MARGIN, local_end + MARGIN)
    buckets: list[Bucket] = []
    day_bucket: list[int] = []
    first_days: list[int] = []
    at = first
    while at <= last:
        following = _next_start(at, granularity)
        start_local = local_day(at) * DAY
        end_local = local_day(following) * DAY
        first_days.append(local_day(at) - local_day(first))
        day_bucket.extend([len(buckets)] * (following - at).days)
        buckets.append(
            Bucket(
                label=_label(at, granularity),
                first=at,
                last=following - timedelta(days=1),
                start=spans.first_instant(start_local),
                end=spans.first_instant(end_local),
            )
        )
        at = following
    return BucketPlan(
        granularity=granularity,
        timezone=timezone,
        period=period,
        buckets=tuple(buckets),
        local_start=local_start,
        local_end=local_end,
        day_bucket=tuple(day_bucket),
        bucket_first_day=tuple(first_days),
        spans=spans,
    )
