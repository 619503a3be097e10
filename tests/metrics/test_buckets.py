"""Buckets in the metric's zone: labels, whole weeks and months, DST days of 23 and 25
hours, zones far from UTC; the zone's offsets; periods a request asks for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from interlink.config import MetricConfig
from interlink.errors import ConfigError
from interlink.metrics import MetricRequest, Period, offset_spans, plan_buckets, resolve_period


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def hours(bucket) -> float:
    return (bucket.end - bucket.start) / 3600


def test_berlin_dst_days_are_23_and_25_hours():
    plan = plan_buckets(Period(date(2026, 3, 28), date(2026, 3, 30)), "day", "Europe/Berlin")
    assert plan.labels == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert [hours(b) for b in plan.buckets] == [24, 23, 24]
    spring = plan.buckets[1]
    assert (spring.iso_start(), spring.iso_end()) == (
        "2026-03-28T23:00:00Z",
        "2026-03-29T22:00:00Z",
    )
    autumn = plan_buckets(Period(date(2026, 10, 25), date(2026, 10, 25)), "day", "Europe/Berlin")
    assert [hours(b) for b in autumn.buckets] == [25]
    assert autumn.buckets[0].iso_start() == "2026-10-24T22:00:00Z"


def test_a_day_far_from_utc_is_the_zone_s_day():
    auckland = plan_buckets(Period(date(2026, 1, 15), date(2026, 1, 15)), "day", "Pacific/Auckland")
    # NZDT is UTC+13: the local 15th starts on the 14th at 11:00 UTC.
    assert auckland.buckets[0].iso_start() == "2026-01-14T11:00:00Z"
    los_angeles = plan_buckets(
        Period(date(2026, 1, 15), date(2026, 1, 15)), "day", "America/Los_Angeles"
    )
    assert los_angeles.buckets[0].iso_start() == "2026-01-15T08:00:00Z"
    # 2026-01-15T05:00Z is the 15th in Auckland and the 14th in Los Angeles.
    instant = utc("2026-01-15T05:00:00")
    assert auckland.bucket_of(auckland.spans.local(instant)) == 0
    assert los_angeles.bucket_of(los_angeles.spans.local(instant)) is None


def test_weeks_and_months_are_whole_and_labelled():
    period = Period(date(2026, 3, 4), date(2026, 3, 31))
    weeks = plan_buckets(period, "week", "UTC")
    assert weeks.labels == ["2026-W10", "2026-W11", "2026-W12", "2026-W13", "2026-W14"]
    assert (weeks.first, weeks.last) == (date(2026, 3, 2), date(2026, 4, 5))
    assert all(b.first.weekday() == 0 and (b.last - b.first).days == 6 for b in weeks.buckets)
    months = plan_buckets(Period(date(2025, 12, 15), date(2026, 2, 3)), "month", "UTC")
    assert months.labels == ["2025-12", "2026-01", "2026-02"]
    assert (months.first, months.last) == (date(2025, 12, 1), date(2026, 2, 28))
    # ISO weeks belong to the ISO year: Monday 2025-12-29 starts 2026-W01.
    new_year = plan_buckets(Period(date(2025, 12, 29), date(2026, 1, 4)), "week", "UTC")
    assert new_year.labels == ["2026-W01"]


def test_a_week_holding_a_dst_change_is_167_hours():
    plan = plan_buckets(Period(date(2026, 3, 23), date(2026, 3, 29)), "week", "Europe/Berlin")
    assert [hours(b) for b in plan.buckets] == [167]


def test_day_bucket_lookup_matches_the_labels():
    plan = plan_buckets(Period(date(2026, 1, 30), date(2026, 3, 2)), "month", "UTC")
    assert plan.labels == ["2026-01", "2026-02", "2026-03"]
    assert plan.bucket_first_day == (0, 31, 59)
    assert plan.bucket_of(plan.local_start) == 0
    assert plan.bucket_of(plan.local_start + 31 * 86400 - 1) == 0
    assert plan.bucket_of(plan.local_start + 31 * 86400) == 1
    assert plan.bucket_of(plan.local_end - 1) == 2
    assert plan.bucket_of(plan.local_end) is None
    assert plan.bucket_of(plan.local_start - 1) is None


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Los_Angeles", "Pacific/Auckland"])
def test_offset_spans_agree_with_zoneinfo_every_hour_of_a_year(zone):
    start, end = utc("2025-12-20T00:00:00"), utc("2027-01-10T00:00:00")
    spans = offset_spans(ZoneInfo(zone), start, end)
    assert len(spans.changes) == 2  # one change each way in 2026
    at = start
    while at < end:
        for instant in (at, at + 1799):
            offset = datetime.fromtimestamp(instant, ZoneInfo(zone)).utcoffset()
            assert offset is not None
            assert spans.offset(instant) == int(offset.total_seconds())
        at += 1800
    # And at the change itself, to the second.
    for change in spans.changes:
        before = datetime.fromtimestamp(change - 1, ZoneInfo(zone)).utcoffset()
        after = datetime.fromtimestamp(change, ZoneInfo(zone)).utcoffset()
        assert before != after


def test_utc_has_one_offset():
    spans = offset_spans(ZoneInfo("UTC"), 0, 10 * 365 * 86400)
    assert spans.changes == () and spans.offsets == (0,)


# -- periods ---------------------------------------------------------------------------

TODAY = date(2026, 3, 30)


def metric(period: object = "30d") -> MetricConfig:
    return MetricConfig.model_validate({"source": "sql:t", "time_field": "at", "period": period})


def ask(start: str | None = None, end: str | None = None, period: str | None = None):
    return MetricRequest(
        start=date.fromisoformat(start) if start else None,
        end=date.fromisoformat(end) if end else None,
        period=period,
    )


FEBRUARY = {"from": "2026-02-01", "to": "2026-02-28"}


@pytest.mark.parametrize(
    ("configured", "request_", "expected"),
    [
        ("30d", ask(), ("2026-03-01", "2026-03-30")),
        ("7d", ask(), ("2026-03-24", "2026-03-30")),
        ("30d", ask(period="7d"), ("2026-03-24", "2026-03-30")),
        ("30d", ask("2026-01-01", "2026-01-31"), ("2026-01-01", "2026-01-31")),
        ("30d", ask("2026-03-20"), ("2026-03-20", "2026-03-30")),
        ("30d", ask("2026-01-01", period="7d"), ("2026-01-01", "2026-01-07")),
        ("7d", ask(end="2026-01-31"), ("2026-01-25", "2026-01-31")),
        (FEBRUARY, ask(), ("2026-02-01", "2026-02-28")),
        (FEBRUARY, ask(end="2026-03-28"), ("2026-03-01", "2026-03-28")),
    ],
)
def test_which_dates_a_request_covers(configured, request_, expected):
    period = resolve_period(metric(configured), request_, TODAY)
    assert (period.start.isoformat(), period.end.isoformat()) == expected


@pytest.mark.parametrize(
    ("request_", "key", "words"),
    [
        (MetricRequest(period="soon"), "period", "expected a number of days such as 7d"),
        (MetricRequest(start=date(2026, 4, 2)), "from", "to (2026-03-30) is before from"),
        (MetricRequest(start=date(2026, 3, 2), end=date(2026, 3, 1)), "to", "is before from"),
        (MetricRequest(start=date(2026, 1, 1), end=date(2026, 1, 2), period="7d"), "period", ""),
        (MetricRequest(start=date(1969, 1, 1), end=date(1969, 1, 2)), "from", "from 1971"),
        (MetricRequest(start=date(2000, 1, 1), end=date(2026, 1, 1)), "from", "at most 3660"),
    ],
)
def test_a_bad_request_names_its_parameter(request_, key, words):
    with pytest.raises(ConfigError) as info:
        resolve_period(metric(), request_, TODAY)
    assert info.value.key == key and words in info.value.message


def test_previous_and_next_step_by_the_period():
    period = Period(date(2026, 3, 1), date(2026, 3, 7))
    assert period.previous() == Period(date(2026, 2, 22), date(2026, 2, 28))
    assert period.next(TODAY) == Period(date(2026, 3, 8), date(2026, 3, 14))
    assert Period(TODAY - timedelta(days=6), TODAY).next(TODAY) is None
