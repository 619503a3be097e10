"""How `interlink metrics list | show` draw with rich, in 80 columns.

`show` prints the buckets as a table (bucket, total, then as many series as fit; CSV and
JSON have them all) and, under it, a column chart of the totals in Unicode blocks, eight
rows high, one column per bucket (the last 70 when there are more). For count and sum with
group_by the columns are stacked by series, in the table's colours. Names and values go
into `Text`, never into markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["chart_lines", "number_text", "show_metric", "show_metrics"]

WIDTH = 80
_CHART_ROWS = 8
_CHART_COLUMNS = 70
_BLOCKS = " ▁▂▃▄▅▆▇█"
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")
_OTHER = "bright_black"


def _console(console: Console | None) -> Console:
    return console or Console(highlight=False, width=WIDTH)


def number_text(value: Any) -> str:
    """A value as the table shows it: `-` for none, integers with separators, up to three
    decimals."""
    if value is None:
        return "-"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def show_metrics(metrics: Sequence[dict[str, Any]], console: Console | None = None) -> None:
    """The metrics of interlink.yaml, one row each."""
    console = _console(console)
    if not metrics:
        console.print("No metrics in interlink.yaml.")
        return
    table = Table(
        title="Metrics",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("metric", "source", "op", "by"):
        table.add_column(column, overflow="fold")
    table.add_column("period, zone", no_wrap=True)
    for metric in metrics:
        op = metric["op"] + (f"({metric['field']})" if metric["field"] else "")
        by = metric["granularity"] + (f", {metric['group_by']}" if metric["group_by"] else "")
        table.add_row(
            Text(metric["name"]),
            Text(metric["source"]),
            Text(op),
            Text(by),
            Text(f"{metric['period']}\n{metric['timezone']}"),
        )
    console.print(table)


def _colour(index: int, kind: str) -> str:
    return _OTHER if kind == "other" else _COLOURS[index % len(_COLOURS)]


def _series_fit(result: dict[str, Any]) -> int:
    """How many series columns fit beside the bucket and total columns."""
    if result["group_by"] is None:
        return 0
    label_width = max((len(label) for label in result["labels"]), default=6)
    total_width = max([5, *(len(number_text(v)) for v in result["totals"])])
    room = WIDTH - (label_width + 2) - (total_width + 2)
    fitted = 0
    for series in result["series"]:
        width = max(len(number_text(v)) for v in series["values"] or [0])
        width = max(width, min(len(series["label"]), 12)) + 2
        if width > room:
            break
        room -= width
        fitted += 1
    return fitted


def _title(result: dict[str, Any]) -> str:
    what = result["op"] + (f"({result['field']})" if result["field"] else "")
    by = f" by {result['group_by']}" if result["group_by"] else ""
    return (
        f"{result['metric']}: {what}{by} per {result['granularity']}, "
        f"{result['from']} to {result['to']} ({result['timezone']})"
    )


def show_metric(result: dict[str, Any], console: Console | None = None) -> None:
    """A computed metric: its table, then its chart."""
    console = _console(console)
    console.print(Text(_title(result), style="bold"), overflow="fold")
    fitted = _series_fit(result)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("bucket", no_wrap=True)
    table.add_column("total", justify="right", no_wrap=True)
    shown = result["series"][:fitted]
    for index, series in enumerate(shown):
        label = series["label"] if len(series["label"]) <= 12 else series["label"][:11] + "…"
        table.add_column(
            Text(label, style=_colour(index, series["kind"])), justify="right", no_wrap=True
        )
    for index, label in enumerate(result["labels"]):
        cells = [Text(label), Text(number_text(result["totals"][index]), style="bold")]
        cells += [Text(number_text(series["values"][index])) for series in shown]
        table.add_row(*cells)
    console.print(table)
    total = f"total {number_text(result['total'])} over {result['rows']:,} rows"
    hidden = len(result["series"]) - fitted if result["group_by"] is not None else 0
    if hidden:
        total += f"; {hidden} more series in --output csv or json"
    console.print(Text(total), overflow="fold")
    for line in chart_lines(result):
        console.print(line, no_wrap=True, overflow="crop")


def _stackable(result: dict[str, Any]) -> bool:
    return result["group_by"] is not None and result["op"] in ("count", "sum")


def chart_lines(result: dict[str, Any]) -> list[Text]:
    """The column chart of a result's totals: eight rows of blocks and an axis line."""
    totals = result["totals"][-_CHART_COLUMNS:]
    labels = result["labels"][-_CHART_COLUMNS:]
    if not totals:
        return []
    values = [max(float(v), 0.0) if v is not None else 0.0 for v in totals]
    top = max(values)
    if top <= 0:
        return [Text("(nothing to chart: every bucket is empty or at most 0)", style="dim")]
    step = 2 if len(values) <= _CHART_COLUMNS // 2 else 1
    offset = len(result["labels"]) - len(labels)
    stacks: list[list[tuple[float, str]]] = []
    for column, value in enumerate(values):
        if _stackable(result):
            index = offset + column
            parts = [
                (max(float(series["values"][index] or 0), 0.0), _colour(i, series["kind"]))
                for i, series in enumerate(result["series"])
            ]
        else:
            parts = [(value, "cyan")]
        stacks.append(parts)
    eighths = _CHART_ROWS * 8
    rows: list[Text] = []
    for row in range(_CHART_ROWS - 1, -1, -1):
        line = Text()
        for parts in stacks:
            height = sum(part for part, _ in parts) / top * eighths
            filled = min(max(height - row * 8, 0.0), 8.0)
            block = _BLOCKS[round(filled)]
            # The colour of the series that reaches into this cell's middle.
            middle = (row * 8 + 4) / eighths * top
            colour, reached = parts[-1][1], 0.0
            for part, part_colour in parts:
                reached += part
                if reached >= middle:
                    colour = part_colour
                    break
            line.append(block * step, style=colour)
        if row == _CHART_ROWS - 1:
            line.append(f" {number_text(top if top != int(top) else int(top))}", style="dim")
        rows.append(line)
    axis = Text(labels[0], style="dim")
    width = len(values) * step
    if len(labels) > 1 and width > len(labels[0]) + len(labels[-1]) + 1:
        axis.append(" " * (width - len(labels[0]) - len(labels[-1])) + labels[-1], style="dim")
    rows.append(axis)
    if offset:
        rows.append(Text(f"(the last {len(labels)} of {len(result['labels'])} buckets)", "dim"))
    if _stackable(result):
        legend = Text()
        for index, series in enumerate(result["series"][: len(_COLOURS)]):
            legend.append("█ ", style=_colour(index, series["kind"]))
            legend.append(series["label"][:16] + "  ")
        rows.append(legend)
    return rows
