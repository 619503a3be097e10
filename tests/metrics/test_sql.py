"""Metrics over tables, aggregated by SQLite and by PostgreSQL: empty periods, groups that
appear mid-period, DST days, zones far from UTC, epoch and ISO text columns, every op, the
group cap, soft-deleted rows; and both databases giving the same results."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from interlink.errors import ConfigError
from interlink.metrics import MetricRequest, compute_metric
from interlink.store import Store

from .conftest import create_table, make_config

TODAY = date(2026, 12, 31)

COLUMNS = {
    "id": sa.Integer(),
    "at_text": sa.Text(),
    "at_epoch": sa.BigInteger(),
    "at_ms": sa.BigInteger(),
    "at_float": sa.Float(),
    "status": sa.Text(),
    "amount": sa.Float(),
    "amount_text": sa.Text(),
    "customer": sa.Integer(),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> str:
    """A fresh database of each kind (PostgreSQL when INTERLINK_TEST_POSTGRES_URL is set)."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


def row(id_: int, instant: datetime, status: str | None, amount: float | None, **extra: Any):
    epoch = int(instant.timestamp())
    return {
        "id": id_,
        "at_text": instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "at_epoch": epoch,
        "at_ms": epoch * 1000 + 123,
        "at_float": epoch + 0.25,
        "status": status,
        "amount": amount,
        "amount_text": None if amount is None else f"{amount:.2f}",
        "customer": id_ % 3,
        **extra,
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def compute(
    url: str, metrics: dict[str, Any], name: str, request: MetricRequest | None = None
) -> dict[str, Any]:
    config = make_config(url, metrics)
    store = Store.open(config.database)
    try:
        result = await compute_metric(config, store, name, request, today=TODAY)
    finally:
        store.close()
    return result.to_dict()


def metric(**settings: Any) -> dict[str, Any]:
    return {"source": "sql:orders", "time_field": "at_text", **settings}


def by_group(result: dict[str, Any]) -> dict[str | None, list[Any]]:
    return {
        s["group"] if s["kind"] != "other" else "<other>": s["values"] for s in result["series"]
    }


async def test_an_empty_period_has_every_label_and_zeros(database):
    create_table(database, "orders", COLUMNS, [row(1, at("2026-01-01T10:00:00+00:00"), "paid", 5)])
    period = {"from": "2026-03-01", "to": "2026-03-03"}
    result = await compute(database, {"m": metric(period=period)}, "m")
    assert result["labels"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert result["series"] == [
        {"group": None, "kind": "all", "label": "all", "values": [0, 0, 0], "total": 0}
    ]
    assert (result["totals"], result["total"], result["rows"]) == ([0, 0, 0], 0, 0)
    grouped = await compute(database, {"m": metric(period=period, group_by="status")}, "m")
    assert (grouped["series"], grouped["groups"], grouped["totals"]) == ([], [], [0, 0, 0])
    averaged = await compute(database, {"m": metric(period=period, op="avg", field="amount")}, "m")
    assert averaged["series"][0]["values"] == [None, None, None]
    assert averaged["total"] is None and averaged["totals"] == [None, None, None]
    assert set(result["fields"]) == set(COLUMNS)


async def test_a_group_that_appears_mid_period(database):
    rows = [
        row(1, at("2026-03-01T10:00:00+00:00"), "paid", 5),
        row(2, at("2026-03-02T10:00:00+00:00"), "paid", 5),
        row(3, at("2026-03-03T10:00:00+00:00"), "refunded", 7),
        row(4, at("2026-03-03T11:00:00+00:00"), "refunded", 1),
        row(5, at("2026-03-03T12:00:00+00:00"), None, 1),
    ]
    create_table(database, "orders", COLUMNS, rows)
    period = {"from": "2026-03-01", "to": "2026-03-04"}
    result = await compute(database, {"m": metric(period=period, group_by="status")}, "m")
    assert by_group(result) == {
        "paid": [1, 1, 0, 0],
        "refunded": [0, 0, 2, 0],
        None: [0, 0, 1, 0],
    }
    assert result["groups"] == ["paid", "refunded", None]
    assert [s["label"] for s in result["series"]] == ["paid", "refunded", "(null)"]
    assert result["totals"] == [1, 1, 3, 0] and result["total"] == 5


BERLIN_ROWS = [
    # 2026-03-29 in Berlin runs 2026-03-28T23:00Z .. 2026-03-29T22:00Z (23 hours).
    ("2026-03-28T22:59:59+00:00", "2026-03-28"),
    ("2026-03-28T23:00:00+00:00", "2026-03-29"),
    ("2026-03-29T01:30:00+00:00", "2026-03-29"),  # 03:30 CEST, after the gap
    ("2026-03-29T21:59:59+00:00", "2026-03-29"),
    ("2026-03-29T22:00:00+00:00", "2026-03-30"),
    # 2026-10-25 runs 2026-10-24T22:00Z .. 2026-10-25T23:00Z (25 hours).
    ("2026-10-24T21:59:59+00:00", "2026-10-24"),
    ("2026-10-24T22:00:00+00:00", "2026-10-25"),
    ("2026-10-25T00:30:00+00:00", "2026-10-25"),  # 02:30 CEST
    ("2026-10-25T01:30:00+00:00", "2026-10-25"),  # 02:30 CET, the hour again
    ("2026-10-25T22:59:59+00:00", "2026-10-25"),
    ("2026-10-25T23:00:00+00:00", "2026-10-26"),
]


@pytest.mark.parametrize("time_field", ["at_text", "at_epoch", "at_ms", "at_float"])
async def test_dst_days_in_berlin(database, time_field):
    rows = [row(i, at(text), "paid", 1) for i, (text, _) in enumerate(BERLIN_ROWS)]
    create_table(database, "orders", COLUMNS, rows)
    settings = {"time_field": time_field, "timezone": "Europe/Berlin"}
    spring = await compute(
        database,
        {"m": metric(**settings, period={"from": "2026-03-28", "to": "2026-03-30"})},
        "m",
    )
    assert spring["totals"] == [1, 3, 1]
    assert spring["buckets"][1]["start"] == "2026-03-28T23:00:00Z"
    assert spring["buckets"][1]["end"] == "2026-03-29T22:00:00Z"
    autumn = await compute(
        database,
        {"m": metric(**settings, period={"from": "2026-10-24", "to": "2026-10-26"})},
        "m",
    )
    assert autumn["totals"] == [1, 4, 1]
    assert autumn["buckets"][1]["start"] == "2026-10-24T22:00:00Z"
    assert autumn["buckets"][1]["end"] == "2026-10-25T23:00:00Z"


async def test_the_zone_s_day_not_utc_s(database):
    # 2026-01-15T05:00Z is the 15th in Auckland (18:00 NZDT), the 14th in Los Angeles.
    create_table(database, "orders", COLUMNS, [row(1, at("2026-01-15T05:00:00+00:00"), "x", 1)])
    period = {"from": "2026-01-14", "to": "2026-01-15"}
    found = {}
    for zone in ("UTC", "Pacific/Auckland", "America/Los_Angeles"):
        for field in ("at_text", "at_epoch"):
            settings = metric(period=period, timezone=zone, time_field=field)
            found[(zone, field)] = (await compute(database, {"m": settings}, "m"))["totals"]
    assert found == {
        ("UTC", "at_text"): [0, 1],
        ("UTC", "at_epoch"): [0, 1],
        ("Pacific/Auckland", "at_text"): [0, 1],
        ("Pacific/Auckland", "at_epoch"): [0, 1],
        ("America/Los_Angeles", "at_text"): [1, 0],
        ("America/Los_Angeles", "at_epoch"): [1, 0],
    }


async def test_text_with_offsets_and_naive_local_text(database):
    columns = {"id": sa.Integer(), "at": sa.Text()}
    rows = [
        {"id": 1, "at": "2026-01-15T01:00:00+02:00"},  # 2026-01-14T23:00Z: the 15th in Berlin
        {"id": 2, "at": "2026-01-14T23:30:00-01:00"},  # 2026-01-15T00:30Z: the 15th
        {"id": 3, "at": "2026-01-15 23:59:59"},  # naive: Berlin's wall clock, the 15th
        {"id": 4, "at": "2026-01-16"},  # a date alone: that local day
        {"id": 5, "at": "2026-01-16T00:00:00.999Z"},  # 01:00 in Berlin, the 16th
        {"id": 6, "at": "next tuesday"},  # not a time: not counted anywhere
        {"id": 7, "at": None},
    ]
    create_table(database, "orders", columns, rows)
    settings = metric(time_field="at", timezone="Europe/Berlin")
    settings["period"] = {"from": "2026-01-14", "to": "2026-01-16"}
    result = await compute(database, {"m": settings}, "m")
    assert result["totals"] == [0, 3, 2]


def ops_rows() -> list[dict[str, Any]]:
    day = at("2026-02-02T12:00:00+00:00")
    return [
        row(1, day, "a", 10.0),
        row(2, day, "a", 20.0),
        row(3, day, "b", 60.0),
        row(4, day + timedelta(days=1), "b", None),
        row(5, day + timedelta(days=1), "b", 3.5),
        row(6, day + timedelta(days=2), None, 1.0),
    ]


NA = None
NONE3 = [None, None, None]


@pytest.mark.parametrize(
    ("op", "field", "by_bucket", "a", "b", "total"),
    [
        ("count", None, [3, 2, 1, 0], [2, 0, 0, 0], [1, 2, 0, 0], 6),
        ("count", "amount", [3, 1, 1, 0], [2, 0, 0, 0], [1, 1, 0, 0], 5),
        ("sum", "amount", [90.0, 3.5, 1.0, 0], [30.0, 0, 0, 0], [60.0, 3.5, 0, 0], 94.5),
        ("sum", "amount_text", [90.0, 3.5, 1.0, 0], [30.0, 0, 0, 0], [60.0, 3.5, 0, 0], 94.5),
        # An average's total is over the rows (94.5 / 5), never an average of averages.
        ("avg", "amount", [30.0, 3.5, 1.0, NA], [15.0] + NONE3, [60.0, 3.5, NA, NA], 18.9),
        ("min", "amount", [10.0, 3.5, 1.0, NA], [10.0] + NONE3, [60.0, 3.5, NA, NA], 1.0),
        ("max", "amount_text", [60.0, 3.5, 1.0, NA], [20.0] + NONE3, [60.0, 3.5, NA, NA], 60.0),
        # customer = id % 3: a has 1, 2; b has 0, 1, 2; the null group 0.
        ("count_distinct", "customer", [3, 2, 1, 0], [2, 0, 0, 0], [1, 2, 0, 0], 3),
    ],
)  # fmt: skip
async def test_every_op_with_its_totals(database, op, field, by_bucket, a, b, total):
    create_table(database, "orders", COLUMNS, ops_rows())
    period = {"from": "2026-02-02", "to": "2026-02-05"}
    settings = metric(op=op, field=field, group_by="status", period=period)
    result = await compute(database, {"m": settings}, "m")
    assert result["totals"] == by_bucket
    assert by_group(result)["a"] == a and by_group(result)["b"] == b
    assert result["total"] == total


async def test_count_distinct_totals_are_counted_again(database):
    # customer 1 buys in group a on day 1 and in group b on day 2: one customer in all.
    rows = [
        row(1, at("2026-02-02T12:00:00+00:00"), "a", 1),
        row(4, at("2026-02-03T12:00:00+00:00"), "b", 1),
    ]
    create_table(database, "orders", COLUMNS, rows)
    period = {"from": "2026-02-02", "to": "2026-02-03"}
    settings = metric(op="count_distinct", field="customer", group_by="status", period=period)
    result = await compute(database, {"m": settings}, "m")
    assert by_group(result) == {"a": [1, 0], "b": [0, 1]}
    assert result["totals"] == [1, 1] and result["total"] == 1
    assert [s["total"] for s in result["series"]] == [1, 1]
    weekly = await compute(
        database, {"m": {**settings, "granularity": "week"}}, "m", MetricRequest(no_group=True)
    )
    assert weekly["totals"] == [1] and weekly["total"] == 1


async def test_at_most_twenty_groups_and_the_rest_as_other(database):
    rows = []
    for group in range(25):
        for n in range(group + 1):  # group 24 has 25 rows, group 0 one
            rows.append(row(len(rows), at("2026-05-05T12:00:00+00:00"), f"g{group:02d}", n))
    rows.append(row(len(rows), at("2026-05-06T12:00:00+00:00"), "g00", 99))
    create_table(database, "orders", COLUMNS, rows)
    period = {"from": "2026-05-05", "to": "2026-05-06"}
    result = await compute(database, {"m": metric(group_by="status", period=period)}, "m")
    assert len(result["series"]) == 21 and result["other_groups"] == 5
    assert result["groups"][:2] == ["g24", "g23"] and len(result["groups"]) == 20
    other = result["series"][-1]
    assert other["kind"] == "other" and other["group"] is None and other["label"] == "other (5)"
    # Folded: g00 to g04, with 1 + 2 + 3 + 4 + 5 rows on the 5th and g00's on the 6th.
    assert other["values"] == [15, 1] and other["total"] == 16
    assert result["totals"] == [sum(range(1, 26)), 1]
    distinct = await compute(
        database,
        {"m": metric(group_by="status", period=period, op="count_distinct", field="amount")},
        "m",
    )
    # Amounts 0..n-1 per group: the other groups' amounts are 0..4 on the 5th, 99 on the 6th.
    assert distinct["series"][-1]["values"] == [5, 1] and distinct["series"][-1]["total"] == 6
    assert distinct["totals"] == [25, 1] and distinct["total"] == 26


async def test_soft_deleted_rows_are_not_counted(database):
    columns = {**COLUMNS, "_deleted_at": sa.Text()}
    rows = [
        row(1, at("2026-02-02T12:00:00+00:00"), "a", 1),
        row(2, at("2026-02-02T12:00:00+00:00"), "a", 1, _deleted_at="2026-02-03T00:00:00Z"),
    ]
    create_table(database, "orders", columns, rows)
    period = {"from": "2026-02-02", "to": "2026-02-02"}
    result = await compute(database, {"m": metric(period=period)}, "m")
    assert result["total"] == 1 and "_deleted_at" not in result["fields"]


async def test_what_a_metric_cannot_read_is_one_clear_error(database):
    create_table(database, "orders", {**COLUMNS, "paid": sa.Boolean()}, ops_rows())
    cases = [
        ({"m": metric()}, MetricRequest(group_by="nope"), "group_by", "no column 'nope'"),
        ({"m": metric(group_by="nope")}, None, "metrics.m.group_by", "no column 'nope'"),
        ({"m": metric(time_field="when")}, None, "metrics.m.time_field", "no column 'when'"),
        ({"m": metric(time_field="paid")}, None, "metrics.m.time_field", "a time field holds"),
        ({"m": metric(op="sum", field="paid")}, None, "metrics.m.field", "sum needs numbers"),
        ({"m": {**metric(), "source": "sql:absent"}}, None, "metrics.m.source", "no table"),
        ({"m": metric()}, MetricRequest(granularity="hour"), "granularity", "expected one of"),
    ]
    for metrics, request, key, words in cases:
        with pytest.raises(ConfigError) as info:
            await compute(database, metrics, "m", request)
        assert info.value.key == key, (key, str(info.value))
        assert words in info.value.message


def reference(rows: list[dict[str, Any]], zone: str, granularity: str) -> dict[str, int]:
    """Counts per bucket label straight from zoneinfo, independent of interlink's spans."""
    counts: dict[str, int] = {}
    for item in rows:
        local = datetime.fromtimestamp(item["at_epoch"], ZoneInfo(zone)).date()
        if granularity == "day":
            label = local.isoformat()
        elif granularity == "week":
            iso = local.isocalendar()
            label = f"{iso.year}-W{iso.week:02d}"
        else:
            label = f"{local.year:04d}-{local.month:02d}"
        counts[label] = counts.get(label, 0) + 1
    return counts


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Pacific/Auckland", "America/Los_Angeles"])
async def test_random_instants_land_where_zoneinfo_says(database, zone):
    rnd = random.Random(zone)
    start = int(datetime(2026, 2, 20, tzinfo=UTC).timestamp())
    rows = [
        row(i, datetime.fromtimestamp(start + rnd.randrange(120 * 86400), UTC), "x", 1)
        for i in range(3000)
    ]
    create_table(database, "orders", COLUMNS, rows)
    period = {"from": "2026-03-01", "to": "2026-05-31"}
    for granularity in ("day", "week", "month"):
        for field in ("at_text", "at_epoch"):
            settings = metric(period=period, timezone=zone, granularity=granularity)
            result = await compute(database, {"m": {**settings, "time_field": field}}, "m")
            expected = reference(rows, zone, granularity)
            assert result["totals"] == [expected.get(label, 0) for label in result["labels"]]


async def test_sqlite_and_postgresql_agree(sqlite_url, pg_url):
    rnd = random.Random(7)
    start = int(datetime(2026, 3, 20, tzinfo=UTC).timestamp())
    rows = []
    for i in range(2000):
        instant = datetime.fromtimestamp(start + rnd.randrange(20 * 86400), UTC)
        status = rnd.choice(["paid", "new", "refunded", None])
        amount = rnd.choice([None, rnd.randrange(1, 10_000) / 4])
        rows.append(row(i, instant, status, amount))
    for url in (sqlite_url, pg_url):
        create_table(url, "orders", COLUMNS, rows)
    period = {"from": "2026-03-25", "to": "2026-04-05"}
    for op, field in [
        ("count", None),
        ("sum", "amount"),
        ("avg", "amount_text"),
        ("min", "amount"),
        ("max", "amount_text"),
        ("count_distinct", "customer"),
    ]:
        for granularity in ("day", "week"):
            settings = metric(
                op=op,
                field=field,
                group_by="status",
                period=period,
                granularity=granularity,
                timezone="Europe/Berlin",
            )
            lite = await compute(sqlite_url, {"m": settings}, "m")
            postgres = await compute(pg_url, {"m": settings}, "m")
            assert lite == postgres, (op, granularity)
            assert lite["total"] not in (0, None)
