"""A metric's result drawn as SVG on the server, and the same numbers as an HTML table.

```python
svg = render_chart(result.to_dict(), kind="bar")    # stacked bars, one stack per bucket
svg = render_chart(result.to_dict(), kind="line")   # one line per series, a marker per value
html = render_table(result.to_dict())               # for screen readers, and without SVG
```

`result` is the shape of docs/metrics.md (`labels`, `series`, `totals`, `total`, `op`...).
The SVG needs nothing else: no script, no stylesheet, no link, no `style=`; colours, fonts
and sizes are presentation attributes, so it works under a Content-Security-Policy that
forbids inline styles, and a page's own stylesheet can still restyle it by class. Text
takes `currentColor`, so it follows the page's colour, dark or light.

What a page (and a test) can rely on:

- every bar segment is `<rect class="bar" data-label= data-group= data-kind= data-value=>`,
  every marker `<circle class="point">` with the same attributes; each has a `<title>`
  ("2026-03-29 — paid: 12"), which browsers show as a tooltip. `data-group` is the series'
  label (the group's text, `(null)`, `other (N)`, or `all` for a metric without group_by)
  and `data-value` the number exactly as the result has it;
- a null value (the average of an empty bucket) draws nothing, and neither does a 0 bar;
- `count` and `sum` are stacked: positive values upwards from 0, negative ones downwards.
  Averages, minima, maxima and distinct counts do not add up, so their bars stand side by
  side in their bucket;
- the y axis always includes 0 and has 4 to 6 ticks at 1, 2, 2.5 or 5 times a power of ten
  (`<text class="tick" data-value=>`); a count never gets a fractional tick, so a count
  that never passes 2 has only the ticks 0, 1, 2;
- x labels are thinned to every k-th bucket so that they never overlap;
- a result with no value other than 0 or null is drawn as an empty chart saying
  "No data in this period";
- the root carries `role="img"`, an `aria-label` summing the chart up (metric, period,
  total) and a `<desc>` listing the series.

Text widths are estimated (0.62 em a character, 1 em for wide East Asian ones), which
over-measures the usual sans-serif faces: labels and legend entries get a little more room
than they need rather than too little.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._chart_text import data_value, full_number, nice_ticks, tick_texts, xml_attr, xml_text

__all__ = ["OTHER_COLOUR", "PALETTE", "nice_ticks", "render_chart", "render_table"]

# Okabe & Ito's eight colours (less black), distinguishable with the common colour-vision
# deficiencies, for the largest series; then Paul Tol's "muted" and four of his "light"
# ones, so that the 20 series a metric can have get 20 colours. `other` is grey.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
    "#77AADD",
    "#EE8866",
    "#EEDD88",
    "#FFAABB",
)
OTHER_COLOUR = "#8C8C8C"

_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
_SMALL = 11  # tick and x labels
_LEGEND = 12
_HEADING = 14
_EM = 0.62  # the estimated width of a character, in ems
_LEGEND_CHARS = 28  # longer group names are cut in the legend (the tooltip has them whole)
_EMPTY = "No data in this period"
_ADDITIVE = frozenset({"count", "sum"})
_WHOLE = frozenset({"count", "count_distinct"})


def _px(value: float) -> str:
    """A coordinate with at most two decimals, as short as it gets."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _text_width(text: str, size: float) -> float:
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in "WF")
    return (len(text) - wide) * size * _EM + wide * size


@dataclass(frozen=True)
class _Series:
    label: str
    kind: str
    colour: str
    values: list[Any]  # numbers or None, as the result has them


def _series_of(result: Mapping[str, Any]) -> list[_Series]:
    given = result.get("series")
    if given is None:  # a bare result: its totals are the one series
        given = [{"label": "all", "kind": "all", "values": result.get("totals", [])}]
    series = []
    for index, entry in enumerate(given):
        kind = str(entry.get("kind", "value"))
        label = entry.get("label")
        if label is None:
            label = "(null)" if entry.get("group") is None else str(entry["group"])
        colour = OTHER_COLOUR if kind == "other" else PALETTE[index % len(PALETTE)]
        series.append(_Series(str(label), kind, colour, list(entry.get("values", []))))
    return series


def _what(result: Mapping[str, Any]) -> str:
    op = str(result.get("op") or "count")
    return op + (f"({result['field']})" if result.get("field") else "")


def _summary(result: Mapping[str, Any], title: str | None, empty: bool) -> str:
    """One sentence for `aria-label`: what, by what, per what, when, and the total."""
    metric = str(result.get("metric") or "metric")
    name = metric if not title or title == metric else f"{title} ({metric})"
    text = f"{name}: {_what(result)}"
    if result.get("group_by"):
        text += f" by {result['group_by']}"
    if result.get("granularity"):
        text += f" per {result['granularity']}"
    labels = list(result.get("labels") or [])
    start, end = result.get("from"), result.get("to")
    if start is None and labels:
        start, end = labels[0], labels[-1]
    if start is not None:
        text += f", {start} to {end}"
    if result.get("timezone"):
        text += f" ({result['timezone']})"
    if empty:
        return text + "; no data in this period"
    if "total" in result:
        text += f"; total {full_number(result['total'])}"
    return text


def _description(
    result: Mapping[str, Any], series: Sequence[_Series], chart: str, empty: bool
) -> str:
    labels = list(result.get("labels") or [])
    text = f"{chart} of {_what(result)}"
    if labels:
        text += f" over {len(labels)} buckets, {labels[0]} to {labels[-1]}"
    if empty:
        return text + ". No data in this period."
    given = list(result.get("series") or [])
    parts = []
    for index, entry in enumerate(series):
        total = given[index].get("total") if index < len(given) else None
        parts.append(entry.label + ("" if total is None else f" (total {full_number(total)})"))
    if len(series) > 1 or (series and series[0].kind != "all"):
        text += f". {len(series)} series: " + ", ".join(parts)
    return text + "."


@dataclass(frozen=True)
class _Frame:
    """Where things go: the plot area, the value scale and the bucket slots."""

    left: float
    top: float
    width: float
    height: float
    low: float
    high: float
    slot: float

    def y(self, value: float) -> float:
        return self.top + (self.high - value) / (self.high - self.low) * self.height

    def centre(self, index: int) -> float:
        return self.left + (index + 0.5) * self.slot


def _legend_rows(series: Sequence[_Series], room: float) -> list[list[tuple[_Series, str, float]]]:
    """Legend entries (series, shown text, width) wrapped into rows of `room` pixels."""
    rows: list[list[tuple[_Series, str, float]]] = [[]]
    used = 0.0
    for entry in series:
        shown = entry.label
        if len(shown) > _LEGEND_CHARS:
            shown = shown[: _LEGEND_CHARS - 1] + "…"
        width = 10 + 5 + _text_width(shown, _LEGEND) + 14
        if rows[-1] and used + width > room:
            rows.append([])
            used = 0.0
        rows[-1].append((entry, shown, width))
        used += width
    return rows if rows[0] else []


def _label_step(labels: Sequence[str], slot: float) -> int:
    """Show every k-th x label, k the least that keeps neighbours apart."""
    widest = max((_text_width(label, _SMALL) for label in labels), default=0.0)
    return max(1, math.ceil((widest + 8) / slot)) if slot > 0 else max(1, len(labels))


def render_chart(
    result: Mapping[str, Any],
    *,
    kind: Literal["bar", "line"] = "bar",
    width: int = 720,
    height: int = 320,
    title: str | None = None,
) -> str:
    """`result` (docs/metrics.md) as a self-contained `<svg>` element: stacked bars or lines.

    `title` is drawn above the chart and names it in its `aria-label` (the metric's name
    otherwise). The chart is `width` by `height` pixels, taller when its legend needs more
    rows than leave the plot 60 pixels.
    """
    if kind not in ("bar", "line"):
        raise ValueError(f"render_chart: kind must be 'bar' or 'line', got {kind!r}")
    if width < 200 or height < 150:
        raise ValueError(
            f"render_chart: a chart needs at least 200 x 150 pixels, got {width} x {height}"
        )
    labels = [str(label) for label in result.get("labels") or []]
    series = _series_of(result)
    for entry in series:
        if len(entry.values) != len(labels):
            raise ValueError(
                f"render_chart: series {entry.label!r} has {len(entry.values)} values "
                f"for {len(labels)} labels"
            )
    op = str(result.get("op") or "count")
    stacked = kind == "bar" and (op in _ADDITIVE or len(series) == 1)
    low, high = _extent(series, len(labels), stacked)
    empty = low == high == 0.0
    chart = "Line chart" if kind == "line" else ("Stacked bar chart" if stacked else "Bar chart")

    integers = op in _WHOLE or all(
        isinstance(value, int) for entry in series for value in entry.values if value is not None
    )
    ticks = [] if empty else nice_ticks(low, high, integers=integers)
    tick_labels = tick_texts(ticks) if ticks else []

    heading = 24.0 if title else 0.0
    top = 12 + heading
    tick_room = max((_text_width(text, _SMALL) for text in tick_labels), default=0.0)
    widest_label = max((_text_width(label, _SMALL) for label in labels), default=0.0)
    left = max(tick_room + 14, widest_label / 2 + 4, 24.0)
    right = max(widest_label / 2 + 4, 12.0)
    plot_width = width - left - right
    grouped_legend = not empty and (len(series) > 1 or any(s.kind != "all" for s in series))
    rows = _legend_rows(series, width - 16) if grouped_legend else []
    legend_height = len(rows) * 18.0 + (6 if rows else 0)
    plot_height = max(height - top - 22 - legend_height - 6, 60.0)
    total_height = math.ceil(top + plot_height + 22 + legend_height + 6)
    slot = plot_width / len(labels) if labels else plot_width
    frame = _Frame(
        left,
        top,
        plot_width,
        plot_height,
        ticks[0] if ticks else 0.0,
        ticks[-1] if ticks else 1.0,
        slot,
    )

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" '
        f'width="{width}" height="{total_height}" viewBox="0 0 {width} {total_height}" '
        f'role="img" aria-label="{xml_attr(_summary(result, title, empty))}" '
        f'font-family="{xml_attr(_FONT)}" font-size="{_SMALL}" fill="currentColor">',
        f"<desc>{xml_text(_description(result, series, chart, empty))}</desc>",
    ]
    if title:
        out.append(
            f'<text class="title" x="{_px(left)}" y="{_px(10 + _HEADING)}" '
            f'font-size="{_HEADING}" font-weight="600">{xml_text(title)}</text>'
        )
    out.extend(_y_axis(frame, ticks, tick_labels))
    out.extend(_x_axis(frame, labels))
    if empty:
        out.append(
            f'<text class="empty" x="{_px(left + plot_width / 2)}" '
            f'y="{_px(top + plot_height / 2)}" text-anchor="middle" '
            f'dominant-baseline="middle" font-size="{_LEGEND + 1}" fill-opacity="0.7">'
            f"{_EMPTY}</text>"
        )
    elif kind == "line":
        out.extend(_lines(frame, labels, series, result))
    else:
        out.extend(_bars(frame, labels, series, stacked, result))
    out.extend(_legend(rows, top + plot_height + 22 + 6 + 10))
    out.append("</svg>")
    return "".join(out)


def _extent(series: Sequence[_Series], count: int, stacked: bool) -> tuple[float, float]:
    """The lowest and highest value drawn (stacks summed), 0 included."""
    low = high = 0.0
    if stacked:
        for index in range(count):
            up = down = 0.0
            for entry in series:
                value = entry.values[index]
                if value is None:
                    continue
                if value > 0:
                    up += value
                else:
                    down += value
            high, low = max(high, up), min(low, down)
        return low, high
    for entry in series:
        for value in entry.values:
            if value is not None:
                high, low = max(high, value), min(low, value)
    return float(low), float(high)


def _y_axis(frame: _Frame, ticks: Sequence[float], texts: Sequence[str]) -> list[str]:
    out = ['<g class="y-axis">']
    right = frame.left + frame.width
    for tick, text in zip(ticks, texts, strict=True):
        y = _px(frame.y(tick))
        value = str(int(tick)) if tick.is_integer() else repr(tick)
        opacity = "0.45" if tick == 0 else "0.15"
        out.append(
            f'<line class="grid" x1="{_px(frame.left)}" x2="{_px(right)}" y1="{y}" y2="{y}" '
            f'stroke="currentColor" stroke-opacity="{opacity}" stroke-width="1"/>'
            f'<text class="tick" x="{_px(frame.left - 8)}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle" data-value="{value}">{xml_text(text)}</text>'
        )
    out.append("</g>")
    return out


def _x_axis(frame: _Frame, labels: Sequence[str]) -> list[str]:
    bottom = frame.top + frame.height
    out = [
        '<g class="x-axis">'
        f'<line class="baseline" x1="{_px(frame.left)}" x2="{_px(frame.left + frame.width)}" '
        f'y1="{_px(bottom)}" y2="{_px(bottom)}" stroke="currentColor" stroke-opacity="0.45"/>'
    ]
    step = _label_step(labels, frame.slot)
    y = _px(bottom + 16)
    for index in range(0, len(labels), step):
        out.append(
            f'<text class="x-label" x="{_px(frame.centre(index))}" y="{y}" '
            f'text-anchor="middle">{xml_text(labels[index])}</text>'
        )
    out.append("</g>")
    return out


def _tooltip(label: str, entry: _Series, value: Any, op: str) -> str:
    name = op if entry.kind == "all" else entry.label
    return f"<title>{xml_text(label)} — {xml_text(name)}: {full_number(value)}</title>"


def _data(label: str, entry: _Series, value: Any) -> str:
    return (
        f'data-label="{xml_attr(label)}" data-group="{xml_attr(entry.label)}" '
        f'data-kind="{xml_attr(entry.kind)}" data-value="{data_value(value)}"'
    )


def _bars(
    frame: _Frame,
    labels: Sequence[str],
    series: Sequence[_Series],
    stacked: bool,
    result: Mapping[str, Any],
) -> list[str]:
    op = _what(result)
    out = ['<g class="bars">']
    if stacked:
        bar = frame.slot * 0.78
        for index, label in enumerate(labels):
            x = _px(frame.centre(index) - bar / 2)
            up = down = 0.0
            for entry in series:
                value = entry.values[index]
                if value is None or value == 0:
                    continue
                base = up if value > 0 else down
                end = base + value
                if value > 0:
                    up = end
                else:
                    down = end
                y0, y1 = frame.y(max(base, end)), frame.y(min(base, end))
                out.append(
                    f'<rect class="bar" x="{x}" y="{_px(y0)}" width="{_px(bar)}" '
                    f'height="{_px(y1 - y0)}" fill="{entry.colour}" '
                    f"{_data(label, entry, value)}>{_tooltip(label, entry, value, op)}</rect>"
                )
    else:
        inner = frame.slot * 0.84
        each = inner / len(series)
        zero = frame.y(0.0)
        for index, label in enumerate(labels):
            start = frame.centre(index) - inner / 2
            for position, entry in enumerate(series):
                value = entry.values[index]
                if value is None or value == 0:
                    continue
                y = frame.y(value)
                out.append(
                    f'<rect class="bar" x="{_px(start + position * each)}" '
                    f'y="{_px(min(y, zero))}" width="{_px(each * 0.9)}" '
                    f'height="{_px(abs(zero - y))}" fill="{entry.colour}" '
                    f"{_data(label, entry, value)}>{_tooltip(label, entry, value, op)}</rect>"
                )
    out.append("</g>")
    return out


def _lines(
    frame: _Frame,
    labels: Sequence[str],
    series: Sequence[_Series],
    result: Mapping[str, Any],
) -> list[str]:
    what = _what(result)
    radius = _px(min(3.0, max(frame.slot / 3, 1.5)))
    paths, points = ['<g class="lines">'], ['<g class="points">']
    for entry in series:
        steps: list[str] = []
        joined = False
        for index, value in enumerate(entry.values):
            if value is None:
                joined = False
                continue
            x, y = _px(frame.centre(index)), _px(frame.y(value))
            steps.append(f"{'L' if joined else 'M'}{x} {y}")
            joined = True
            points.append(
                f'<circle class="point" cx="{x}" cy="{y}" r="{radius}" fill="{entry.colour}" '
                f"{_data(labels[index], entry, value)}>"
                f"{_tooltip(labels[index], entry, value, what)}</circle>"
            )
        if steps:
            paths.append(
                f'<path class="line" d="{" ".join(steps)}" fill="none" stroke="{entry.colour}" '
                f'stroke-width="2" stroke-linejoin="round" stroke-linecap="round" '
                f'data-group="{xml_attr(entry.label)}" data-kind="{xml_attr(entry.kind)}"/>'
            )
    paths.append("</g>")
    points.append("</g>")
    return paths + points


def _legend(rows: Sequence[Sequence[tuple[_Series, str, float]]], top: float) -> list[str]:
    if not rows:
        return []
    out = [f'<g class="legend" font-size="{_LEGEND}">']
    for number, row in enumerate(rows):
        x, y = 8.0, top + number * 18
        for entry, shown, width in row:
            out.append(
                f'<g class="legend-item" data-group="{xml_attr(entry.label)}" '
                f'data-kind="{xml_attr(entry.kind)}">'
                f'<rect x="{_px(x)}" y="{_px(y - 9)}" width="10" height="10" '
                f'fill="{entry.colour}"/>'
                f'<text x="{_px(x + 15)}" y="{_px(y)}">{xml_text(shown)}'
                f"<title>{xml_text(entry.label)}</title></text></g>"
            )
            x += width
    out.append("</g>")
    return out


def render_table(result: Mapping[str, Any], *, title: str | None = None) -> str:
    """`result` as an HTML `<table>`: a row per bucket, its total, then a column per series.

    The caption is `title`, or the chart's summary; headers carry `scope`, cells a
    `data-value` with the number as the result has it. A null value reads "–".
    """
    labels = [str(label) for label in result.get("labels") or []]
    series = _series_of(result)
    grouped = bool(result.get("group_by")) or any(entry.kind != "all" for entry in series)
    shown = series if grouped else []
    totals = list(result.get("totals") or [None] * len(labels))
    given = list(result.get("series") or [])
    heading = str(result.get("granularity") or "bucket")
    caption = title or _summary(result, None, False)

    def cell(value: Any) -> str:
        if value is None:
            return "<td>–</td>"
        return f'<td data-value="{data_value(value)}">{xml_text(full_number(value))}</td>'

    out = [
        '<table class="metric-table">',
        f"<caption>{xml_text(caption)}</caption>",
        f'<thead><tr><th scope="col">{xml_text(heading)}</th><th scope="col">total</th>',
    ]
    out.extend(f'<th scope="col">{xml_text(entry.label)}</th>' for entry in shown)
    out.append("</tr></thead><tbody>")
    for index, label in enumerate(labels):
        out.append(f'<tr><th scope="row">{xml_text(label)}</th>')
        out.append(cell(totals[index] if index < len(totals) else None))
        out.extend(cell(entry.values[index]) for entry in shown)
        out.append("</tr>")
    out.append('</tbody><tfoot><tr><th scope="row">period</th>')
    out.append(cell(result.get("total")))
    out.extend(
        cell(given[index].get("total") if index < len(given) else None)
        for index in range(len(shown))
    )
    out.append("</tr></tfoot></table>")
    return "".join(out)
