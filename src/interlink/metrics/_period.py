"""Which local dates a metric covers: its configured period, or what a request asks for.

A request (`?from=&to=&period=`, `--from --to --period`) may override the configured
period:

- `from` and `to`: those dates, both included;
- `period=Nd` alone: the last N days up to and including today;
- `period=Nd` with `from` (or `to`): N days from `from` (or up to `to`);
- `from` alone: from then to today; `to` alone: the metric's number of days up to `to`.

"Today" is today in the metric's time zone. `previous` and `next` step by the period's
length: what a chart's back and forward buttons ask for (`next` is None once it would
start after today).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from interlink.config import MAX_PERIOD_DAYS, MetricConfig, parse_period_days
from interlink.errors import ConfigError

__all__ = ["MetricRequest", "Period", "resolve_period"]

_FIRST, _LAST = date(1971, 1, 1), date(2999, 12, 31)


@dataclass(frozen=True)
class MetricRequest:
    """What a caller asks of a metric beyond its configuration; None keeps the metric's."""

    start: date | None = None
    end: date | None = None
    period: str | None = None
    """`7d`, `30d`, `90d`: a number of days."""
    granularity: str | None = None
    group_by: str | None = None
    no_group: bool = False
    """One series over all rows, even when the metric has a `group_by`."""


@dataclass(frozen=True)
class Period:
    """Local dates, both included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        length = timedelta(days=self.days)
        return Period(self.start - length, self.end - length)

    def next(self, today: date) -> Period | None:
        length = timedelta(days=self.days)
        following = Period(self.start + length, self.end + length)
        return following if following.start <= today else None


def _days(text: str) -> int:
    try:
        return parse_period_days(text)
    except ValueError as exc:
        raise ConfigError(str(exc), key="period") from None


def resolve_period(metric: MetricConfig, request: MetricRequest, today: date) -> Period:
    """The dates a request covers (ConfigError naming `from`, `to` or `period` otherwise)."""
    configured = metric.period
    if configured.days is not None:
        default_days = configured.days
    else:
        assert configured.start is not None and configured.end is not None
        default_days = (configured.end - configured.start).days + 1
    start, end = request.start, request.end
    days = _days(request.period) if request.period is not None else None
    if start is not None and end is not None:
        if days is not None:
            raise ConfigError(
                "give from and to, or period with one of them; not all three", key="period"
            )
        period = Period(start, end)
    elif start is not None:
        period = Period(start, start + timedelta(days=days - 1) if days else today)
    elif end is not None:
        period = Period(end - timedelta(days=(days or default_days) - 1), end)
    elif days is not None:
        period = Period(today - timedelta(days=days - 1), today)
    elif configured.days is not None:
        period = Period(today - timedelta(days=configured.days - 1), today)
    else:
        assert configured.start is not None and configured.end is not None
        period = Period(configured.start, configured.end)
    if period.end < period.start:
        raise ConfigError(
            f"to ({period.end.isoformat()}) is before from ({period.start.isoformat()})",
            key="to" if end is not None else "from",
        )
    if period.days > MAX_PERIOD_DAYS:
        raise ConfigError(
            f"a period covers at most {MAX_PERIOD_DAYS} days; this one {period.days}",
            key="from" if start is not None else "period",
        )
    for key, value in (("from", period.start), ("to", period.end)):
        if not _FIRST <= value <= _LAST:
            raise ConfigError(
                f"expected a date from {_FIRST.year} to {_LAST.year}; got {value.isoformat()!r}",
                key=key,
            )
    return period
