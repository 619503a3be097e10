"""The dashboard's charts: SVG that parses, one bar segment or marker per value with the
value in its data attributes, stacks in proportion, nice ticks, x labels that never
overlap, escaped names, nulls and negative values, the empty chart, the table, no script
or style anywhere, and a chart of a metric computed on a real SQLite table."""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, strategies as st

from interlink.metrics import MetricRequest, compute_metric
from interlink.server.dashboard._charts import (
    OTHER_COLOUR,
    PALETTE,
    nice_ticks,
    render_chart,
    render_table,
)
from interlink.store import Store
from tests.metrics.conftest import create_table, make_config

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def of_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in (e.get("class") or "").split()]


def tooltip(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None, f"{element.tag} {element.attrib} has no <title>"
    return title.text or ""


def orders() -> dict[str, Any]:
    """The result of docs/metrics.md: three days, three groups."""
    return {
        "metric": "orders_per_day",
        "source": "sql:orders",
        "live": False,
        "op": "count",
        "field": None,
        "group_by": "status",
        "granularity": "day",
        "timezone": "Europe/Berlin",
        "from": "2026-03-28",
        "to": "2026-03-30",
        "labels": ["2026-03-28", "2026-03-29", "2026-03-30"],
        "series": [
            {"group": "paid", "kind": "value", "label": "paid", "values": [0, 3, 1], "total": 4},
            {"group": "new", "kind": "value", "label": "new", "values": [2, 1, 0], "total": 3},
            {"group": None, "kind": "null", "label": "(null)", "values": [0, 0, 1], "total": 1},
        ],
        "totals": [2, 4, 2],
        "total": 8,
        "rows": 8,
        "groups": ["paid", "new", None],
        "other_groups": 0,
    }


def big(labels: int = 90, groups: int = 20) -> dict[str, Any]:
    """`labels` days and `groups` groups plus `other`: a metric at its largest."""
    days = [(date(2026, 1, 1) + timedelta(days=i)).isoformat() for i in range(labels)]
    series = [
        {
            "group": f"g{g}",
            "kind": "value",
            "label": f"g{g}",
            "values": [(g * 7 + d * 3) % 11 for d in range(labels)],
        }
        for g in range(groups)
    ]
    series.append({"group": None, "kind": "other", "label": "other (4)", "values": [1] * labels})
    for entry in series:
        entry["total"] = sum(entry["values"])
    totals = [sum(s["values"][d] for s in series) for d in range(labels)]
    return {
        **orders(),
        "from": days[0],
        "to": days[-1],
        "labels": days,
        "series": series,
        "totals": totals,
        "total": sum(totals),
    }


def test_one_bar_segment_per_value_that_is_not_zero():
    result = orders()
    root = parse(render_chart(result))
    bars = of_class(root, "bar")
    expected = {
        (label, s["label"]): value
        for s in result["series"]
        for label, value in zip(result["labels"], s["values"], strict=True)
        if value
    }
    found = {(b.get("data-label"), b.get("data-group")): float(b.get("data-value")) for b in bars}
    assert found == expected
    assert len(bars) == len(expected) == 5
    assert all(b.tag == f"{SVG}rect" for b in bars)
    kinds = {b.get("data-group"): b.get("data-kind") for b in bars}
    assert kinds == {"paid": "value", "new": "value", "(null)": "null"}


def test_stacks_are_in_proportion_and_touch():
    result = big(labels=12, groups=5)
    root = parse(render_chart(result, height=400))
    bars = of_class(root, "bar")
    per_unit = [float(b.get("height")) / float(b.get("data-value")) for b in bars]
    assert max(per_unit) - min(per_unit) < 0.02
    scale = per_unit[0]
    by_label: dict[str, list[ET.Element]] = {}
    for bar in bars:
        by_label.setdefault(bar.get("data-label"), []).append(bar)
    for index, label in enumerate(result["labels"]):
        stack = by_label[label]
        # Series order, bottom up; each segment starts where the one below it ends.
        assert [b.get("data-group") for b in stack] == [
            s["label"] for s in result["series"] if s["values"][index]
        ]
        for below, above in zip(stack, stack[1:], strict=False):
            bottom_of_above = float(above.get("y")) + float(above.get("height"))
            assert bottom_of_above == pytest.approx(float(below.get("y")), abs=0.011)
        height = sum(float(b.get("height")) for b in stack)
        assert height == pytest.approx(result["totals"][index] * scale, abs=0.05)
        assert len({b.get("x") for b in stack}) == 1


def test_colours_come_from_a_fixed_palette_and_other_is_grey():
    result = big(labels=3, groups=20)
    root = parse(render_chart(result))
    colour = {b.get("data-group"): b.get("fill") for b in of_class(root, "bar")}
    assert colour["other (4)"] == OTHER_COLOUR
    assert [colour[f"g{g}"] for g in range(20)] == list(PALETTE)
    assert len(set(PALETTE) | {OTHER_COLOUR}) == 21
    legend = [g.get("data-group") for g in of_class(root, "legend-item")]
    assert legend == [s["label"] for s in result["series"]]


def is_nice(step: float) -> bool:
    exponent = math.floor(math.log10(step))
    mantissa = step / 10**exponent
    return any(math.isclose(mantissa, m, rel_tol=1e-9) for m in (1, 2, 2.5, 5, 10))


@given(
    st.floats(min_value=-1e12, max_value=0, allow_nan=False),
    st.floats(min_value=0, max_value=1e12, allow_nan=False),
)
def test_ticks_are_nice_and_cover_the_values(low, high):
    if high - low < 1e-6:
        return
    ticks = nice_ticks(low, high)
    assert 4 <= len(ticks) <= 6, ticks
    step = ticks[1] - ticks[0]
    assert is_nice(step), ticks
    for a, b in zip(ticks, ticks[1:], strict=False):
        assert b - a == pytest.approx(step, rel=1e-9)
    assert ticks[0] <= low and ticks[-1] >= high and 0.0 in ticks


@given(st.integers(min_value=-(10**9), max_value=0), st.integers(min_value=0, max_value=10**9))
def test_count_ticks_are_whole_numbers(low, high):
    if low == high:
        return
    ticks = nice_ticks(low, high, integers=True)
    assert all(t == int(t) for t in ticks) and 0.0 in ticks
    assert ticks[0] <= low and ticks[-1] >= high
    assert is_nice(ticks[1] - ticks[0])
    # A range under 3 has fewer ticks rather than fractional ones.
    assert (4 if high - low >= 3 else 2) <= len(ticks) <= 6, ticks


def tick_texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in of_class(root, "tick")]


def single(values: list[Any], op: str = "sum") -> dict[str, Any]:
    labels = [f"2026-0{i + 1}" for i in range(len(values))]
    return {
        "metric": "m",
        "op": op,
        "field": "amount",
        "group_by": None,
        "granularity": "month",
        "labels": labels,
        "series": [{"group": None, "kind": "all", "label": "all", "values": values}],
        "totals": values,
        "total": sum(v for v in values if v is not None),
    }


def test_tick_labels_have_separators_and_k_or_m():
    assert tick_texts(parse(render_chart(single([4000, 2600])))) == [
        "0",
        "1,000",
        "2,000",
        "3,000",
        "4,000",
    ]
    assert tick_texts(parse(render_chart(single([120_000, 5])))) == [
        "0",
        "25k",
        "50k",
        "75k",
        "100k",
        "125k",
    ]
    assert tick_texts(parse(render_chart(single([3_500_000])))) == [
        "0",
        "1M",
        "2M",
        "3M",
        "4M",
    ]
    small = tick_texts(parse(render_chart(single([0.9, 0.3]))))
    assert small == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    ticks = of_class(parse(render_chart(single([12_500, -3000]))), "tick")
    assert [t.text for t in ticks] == ["\u22125k", "0", "5k", "10k", "15k"]
    assert [float(t.get("data-value")) for t in ticks] == [-5000, 0, 5000, 10000, 15000]


def test_ninety_daily_labels_never_overlap():
    result = big(labels=90, groups=3)
    root = parse(render_chart(result, width=720))
    labels = of_class(root, "x-label")
    assert 5 <= len(labels) <= 12
    assert labels[0].text == result["labels"][0]
    xs = [float(label.get("x")) for label in labels]
    # 0.62 em per character at 11 px over-measures "2026-01-01" in any sans-serif face.
    width = len("2026-01-01") * 11 * 0.62
    assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= width
    assert xs[0] - width / 2 >= 0 and xs[-1] + width / 2 <= 720
    steps = {result["labels"].index(label.text) for label in labels}
    stride = sorted(steps)[1] - sorted(steps)[0]
    assert steps == set(range(0, 90, stride))
    # A few buckets show every label.
    assert len(of_class(parse(render_chart(orders())), "x-label")) == 3


def test_names_are_escaped():
    hostile = "<script>alert(\"x\")</script> & 'quotes'\tand\x01control"
    result = orders()
    result["series"][0]["label"] = result["series"][0]["group"] = hostile
    result["labels"][1] = "<b>2026-03-29</b>"
    svg = render_chart(result, title="<i>Orders</i>")
    assert "<script" not in svg.lower() and "<b>" not in svg and "<i>" not in svg
    root = parse(svg)
    groups = {b.get("data-group") for b in of_class(root, "bar")}
    # Everything survives as text except the control character, which XML cannot carry.
    assert hostile.replace("\x01", "\ufffd") in groups
    assert any("<b>2026-03-29</b>" == b.get("data-label") for b in of_class(root, "bar"))
    assert of_class(root, "title")[0].text == "<i>Orders</i>"
    assert "<i>Orders</i>" in root.get("aria-label")
    line = parse(render_chart(result, kind="line"))
    assert hostile.replace("\x01", "\ufffd") in {
        p.get("data-group") for p in of_class(line, "point")
    }
    table = render_table(result)
    assert "<script" not in table.lower()
    ET.fromstring(table)


def test_nothing_that_runs_or_loads():
    result = big(labels=30, groups=20)
    for svg in (
        render_chart(result, title="t"),
        render_chart(result, kind="line"),
        render_chart(single([0, 0])),
    ):
        for element in parse(svg).iter():
            tag = element.tag.removeprefix(SVG)
            assert tag not in {"script", "style", "foreignObject", "image", "use", "a"}
            for name in element.attrib:
                assert name != "style" and not name.startswith("on") and "href" not in name
            assert "url(" not in " ".join(element.attrib.values())


def test_every_segment_and_marker_has_a_tooltip_and_the_chart_a_summary():
    result = orders()
    root = parse(render_chart(result))
    assert root.get("role") == "img"
    summary = root.get("aria-label")
    for part in ("orders_per_day", "count by status", "2026-03-28 to 2026-03-30", "total 8"):
        assert part in summary
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "paid (total 4)" in (desc.text or "")
    for bar in of_class(root, "bar"):
        group, value = bar.get("data-group"), bar.get("data-value")
        assert tooltip(bar) == f"{bar.get('data-label')} — {group}: {value}"
    for point in of_class(parse(render_chart(result, kind="line")), "point"):
        assert tooltip(point).startswith(f"{point.get('data-label')} — {point.get('data-group')}:")
    plain = parse(render_chart(single([1500.25, 2])))
    assert [tooltip(b) for b in of_class(plain, "bar")] == [
        "2026-01 — sum(amount): 1,500.25",
        "2026-02 — sum(amount): 2",
    ]
    assert not of_class(plain, "legend")


def test_lines_have_a_marker_per_value_and_gaps_at_nulls():
    result = orders()
    result["op"] = "avg"
    result["field"] = "total"
    result["series"][0]["values"] = [None, 3.5, 1.25]
    result["series"][1]["values"] = [2, None, 4]
    result["series"][2]["values"] = [None, None, None]
    root = parse(render_chart(result, kind="line"))
    points = of_class(root, "point")
    found = Counter(
        (p.get("data-group"), p.get("data-label"), float(p.get("data-value"))) for p in points
    )
    assert found == Counter(
        {
            ("paid", "2026-03-29", 3.5): 1,
            ("paid", "2026-03-30", 1.25): 1,
            ("new", "2026-03-28", 2.0): 1,
            ("new", "2026-03-30", 4.0): 1,
        }
    )
    paths = {p.get("data-group"): p.get("d") for p in of_class(root, "line")}
    assert set(paths) == {"paid", "new"}  # (null) has no value at all
    assert paths["paid"].count("M") == 1 and paths["paid"].count("L") == 1
    assert paths["new"].count("M") == 2 and "L" not in paths["new"]  # two lone points


def test_nulls_draw_nothing_and_averages_stand_side_by_side():
    result = orders()
    result["op"] = "avg"
    result["field"] = "total"
    result["series"][0]["values"] = [None, 3.5, 1.25]
    result["series"][1]["values"] = [2, None, 4]
    result["series"][2]["values"] = [None, None, None]
    root = parse(render_chart(result))
    bars = of_class(root, "bar")
    assert sorted((b.get("data-group"), b.get("data-label")) for b in bars) == [
        ("new", "2026-03-28"),
        ("new", "2026-03-30"),
        ("paid", "2026-03-29"),
        ("paid", "2026-03-30"),
    ]
    zero = next(t for t in of_class(root, "tick") if t.get("data-value") == "0")
    for bar in bars:  # not stacked: every bar stands on 0
        assert float(bar.get("y")) + float(bar.get("height")) == pytest.approx(
            float(zero.get("y")), abs=0.011
        )
    last = [b for b in bars if b.get("data-label") == "2026-03-30"]
    assert len({b.get("x") for b in last}) == 2


def test_negative_values_hang_below_zero():
    result = orders()
    result["op"] = "sum"
    result["series"][0]["values"] = [-30, 50, 0]
    result["series"][1]["values"] = [10, -20, 0]
    result["series"][2]["values"] = [-5, 0, 0]
    root = parse(render_chart(result))
    ticks = {float(t.get("data-value")): float(t.get("y")) for t in of_class(root, "tick")}
    assert 0.0 in ticks and min(ticks) <= -35 and max(ticks) >= 50
    zero = ticks[0.0]
    bars = {(b.get("data-label"), b.get("data-group")): b for b in of_class(root, "bar")}
    top = lambda b: float(b.get("y"))  # noqa: E731
    bottom = lambda b: float(b.get("y")) + float(b.get("height"))  # noqa: E731
    first = "2026-03-28"
    # Positives stack up from 0, negatives down from 0, each in series order.
    assert bottom(bars[first, "new"]) == pytest.approx(zero, abs=0.011)
    assert top(bars[first, "paid"]) == pytest.approx(zero, abs=0.011)
    assert top(bars[first, "(null)"]) == pytest.approx(bottom(bars[first, "paid"]), abs=0.011)
    assert bottom(bars["2026-03-29", "paid"]) == pytest.approx(zero, abs=0.011)
    assert top(bars["2026-03-29", "new"]) == pytest.approx(zero, abs=0.011)
    scale = float(bars[first, "paid"].get("height")) / 30
    assert float(bars[first, "(null)"].get("height")) == pytest.approx(5 * scale, abs=0.011)
    assert not any(label == "2026-03-30" for label, _ in bars)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.update(series=[], totals=[0, 0, 0], total=0),
        lambda r: [s.update(values=[0, 0, 0]) for s in r["series"]],
        lambda r: [s.update(values=[None, None, None]) for s in r["series"]],
        lambda r: r.update(labels=[], series=[], totals=[], total=0),
    ],
    ids=["no-series", "all-zero", "all-null", "no-buckets"],
)
@pytest.mark.parametrize("kind", ["bar", "line"])
def test_an_empty_result_is_an_empty_chart(change, kind):
    result = orders()
    change(result)
    root = parse(render_chart(result, kind=kind))
    assert not of_class(root, "bar") and not of_class(root, "point") and not of_class(root, "line")
    assert [e.text for e in of_class(root, "empty")] == ["No data in this period"]
    assert "no data in this period" in root.get("aria-label")
    assert not of_class(root, "legend")


def test_the_table_has_the_same_numbers():
    result = orders()
    result["series"][0]["values"][2] = None
    table = ET.fromstring(render_table(result))
    assert table.tag == "table"
    caption = table.find("caption")
    assert caption is not None and "orders_per_day" in (caption.text or "")
    heads = table.findall("thead/tr/th")
    assert [(h.text, h.get("scope")) for h in heads] == [
        ("day", "col"),
        ("total", "col"),
        ("paid", "col"),
        ("new", "col"),
        ("(null)", "col"),
    ]
    rows = table.findall("tbody/tr")
    assert [(r.find("th").text, r.find("th").get("scope")) for r in rows] == [
        (label, "row") for label in result["labels"]
    ]
    cells = [[td.get("data-value") for td in r.findall("td")] for r in rows]
    assert cells == [["2", "0", "2", "0"], ["4", "3", "1", "0"], ["2", None, "0", "1"]]
    assert rows[2].findall("td")[1].text == "–"
    assert [td.text for td in table.findall("tfoot/tr/td")] == ["8", "4", "3", "1"]
    plain = ET.fromstring(render_table(single([1234.5, 2]), title="Revenue"))
    assert plain.find("caption").text == "Revenue"
    assert [h.text for h in plain.findall("thead/tr/th")] == ["month", "total"]
    assert [td.text for td in plain.findall("tbody/tr/td")] == ["1,234.5", "2"]


def test_mistakes_are_named():
    with pytest.raises(ValueError, match="kind must be 'bar' or 'line', got 'pie'"):
        render_chart(orders(), kind="pie")  # type: ignore[arg-type]
    broken = orders()
    broken["series"][1]["values"] = [1]
    with pytest.raises(ValueError, match="series 'new' has 1 values for 3 labels"):
        render_chart(broken)
    with pytest.raises(ValueError, match="at least 200 x 150 pixels, got 100 x 320"):
        render_chart(orders(), width=100)


def test_a_long_legend_wraps_and_the_chart_grows():
    result = big(labels=7, groups=20)
    for entry in result["series"]:
        entry["label"] = entry["label"] + "-a-rather-long-status-name"
    root = parse(render_chart(result, width=400, height=200))
    rows = {item.find(f"{SVG}text").get("y") for item in of_class(root, "legend-item")}
    assert len(rows) > 3
    for item in of_class(root, "legend-item"):
        assert float(item.find(f"{SVG}rect").get("x")) < 400
    assert int(root.get("height")) > 200
    assert root.get("viewBox") == f"0 0 400 {root.get('height')}"


def test_ninety_days_of_twenty_one_series_render_quickly():
    result = big(labels=90, groups=20)
    timings = []
    for kind in ("bar", "line"):
        for _ in range(5):
            started = time.perf_counter()
            svg = render_chart(result, kind=kind)  # type: ignore[arg-type]
            timings.append(time.perf_counter() - started)
        root = parse(svg)
        expected = sum(1 for s in result["series"] for v in s["values"] if kind == "line" or v)
        assert len(of_class(root, "point" if kind == "line" else "bar")) == expected
    assert min(timings) < 0.05, timings


COLUMNS = {"id": sa.Integer(), "created_at": sa.Text(), "status": sa.Text(), "amount": sa.Float()}


async def test_a_metric_computed_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'charts.db'}"
    rows = [
        {"id": 1, "created_at": "2026-03-01T09:00:00Z", "status": "paid", "amount": 10.0},
        {"id": 2, "created_at": "2026-03-01T10:00:00Z", "status": "paid", "amount": 5.5},
        {"id": 3, "created_at": "2026-03-01T11:00:00Z", "status": "<new>", "amount": 7.0},
        {"id": 4, "created_at": "2026-03-03T12:00:00Z", "status": None, "amount": -2.0},
        {"id": 5, "created_at": "2026-03-04T12:00:00Z", "status": "paid", "amount": 1.0},
    ]
    create_table(url, "orders", COLUMNS, rows)
    period = {"from": "2026-03-01", "to": "2026-03-04"}
    base = {"source": "sql:orders", "time_field": "created_at", "group_by": "status"}
    config = make_config(
        url,
        {
            "orders": {**base, "period": period},
            "revenue": {**base, "op": "sum", "field": "amount", "period": period},
        },
    )
    store = Store.open(config.database)
    try:
        counted = (await compute_metric(config, store, "orders", MetricRequest())).to_dict()
        summed = (await compute_metric(config, store, "revenue", MetricRequest())).to_dict()
    finally:
        store.close()

    root = parse(render_chart(counted, title="Orders"))
    bars = Counter((b.get("data-label"), b.get("data-group")) for b in of_class(root, "bar"))
    assert bars == Counter(
        {
            ("2026-03-01", "paid"): 1,
            ("2026-03-01", "<new>"): 1,
            ("2026-03-03", "(null)"): 1,
            ("2026-03-04", "paid"): 1,
        }
    )
    values = {
        (b.get("data-label"), b.get("data-group")): b.get("data-value")
        for b in of_class(root, "bar")
    }
    assert values["2026-03-01", "paid"] == "2"
    assert [t.get("data-value") for t in of_class(root, "tick")] == ["0", "1", "2", "3"]
    assert [x.text for x in of_class(root, "x-label")] == counted["labels"]
    assert "total 5" in root.get("aria-label")

    money = parse(render_chart(summed, kind="line"))
    points = {
        (p.get("data-label"), p.get("data-group")): float(p.get("data-value"))
        for p in of_class(money, "point")
    }
    assert points["2026-03-01", "paid"] == 15.5
    assert points["2026-03-03", "(null)"] == -2.0
    assert len(points) == 4 * len(summed["series"])
    assert min(float(t.get("data-value")) for t in of_class(money, "tick")) < 0
    table = ET.fromstring(render_table(summed))
    assert [td.text for td in table.findall("tfoot/tr/td")][0] == "21.5"
