"""`interlink metrics list | show` on a real interlink.yaml and SQLite file: a table and a
chart in 80 columns, JSON and CSV, and one line on stderr with exit 2 for a mistake."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from .conftest import create_table

CONFIG = """
database: sqlite:///{db}
metrics:
  orders_per_day:
    source: sql:orders
    time_field: at
    group_by: status
    timezone: Europe/Berlin
    period: {{from: 2026-03-28, to: 2026-03-30}}
  revenue:
    source: sql:orders
    time_field: at
    op: sum
    field: amount
    period: 7d
"""
ROWS = [
    {"at": "2026-03-28T23:30:00Z", "status": "paid", "amount": 10},
    {"at": "2026-03-29T12:00:00Z", "status": "new", "amount": 5},
    {"at": "2026-03-29T13:00:00Z", "status": "new", "amount": 5},
    {"at": "2026-03-30T12:00:00Z", "status": "a status with a long name", "amount": 1},
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    db = tmp_path / "state.db"
    columns = {"at": sa.Text(), "status": sa.Text(), "amount": sa.Integer()}
    create_table(f"sqlite:///{db}", "orders", columns, ROWS)
    config = tmp_path / "interlink.yaml"
    config.write_text(CONFIG.format(db=db))
    return config


def invoke(project: Path, *args: str, width: int = 80) -> Result:
    from interlink.cli.main import app

    return CliRunner().invoke(
        app, ["metrics", *args, "-c", str(project)], env={"COLUMNS": str(width)}
    )


def test_list_fits_80_columns(project):
    result = invoke(project, "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "orders_per_day" in result.output and "sum(amount)" in result.output
    assert "2026-03-28..2026-03-30" in result.output and "Europe/Berlin" in result.output
    listed = invoke(project, "list", "--json")
    assert [m["name"] for m in json.loads(listed.output)] == ["orders_per_day", "revenue"]


def test_show_draws_a_table_and_a_chart_in_80_columns(project):
    result = invoke(project, "show", "orders_per_day")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, result.output
    assert lines[0].startswith("orders_per_day: count by status per day, 2026-03-28 to")
    table = [line.split() for line in lines if line.strip().startswith("2026-03-")]
    assert table[:3] == [
        ["2026-03-28", "0", "0", "0", "0"],
        ["2026-03-29", "3", "2", "0", "1"],
        ["2026-03-30", "1", "0", "1", "0"],
    ]
    assert "total 4 over 4 rows" in result.output
    chart = [line for line in lines if set(line.strip()) <= set(" ▁▂▃▄▅▆▇█") and line.strip()]
    assert len(chart) >= 7  # eight rows of blocks; the top one carries the scale
    assert "█" in result.output and "a status wi…" in result.output


def test_json_and_csv(project):
    as_json = invoke(project, "show", "orders_per_day", "-o", "json", "--granularity", "week")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["labels"] == ["2026-W13", "2026-W14"] and data["totals"] == [3, 1]
    as_csv = invoke(project, "show", "orders_per_day", "--output", "csv")
    rows = list(csv.reader(io.StringIO(as_csv.output)))
    assert rows[0][:4] == ["bucket", "start", "end", "total"]
    assert rows[0][4:] == ["new", "a status with a long name", "paid"]
    assert rows[2] == [
        "2026-03-29",
        "2026-03-28T23:00:00Z",
        "2026-03-29T22:00:00Z",
        "3",
        "2",
        "0",
        "1",
    ]
    periods = invoke(
        project, "show", "revenue", "--from", "2026-03-29", "--to", "2026-03-30", "-o", "csv"
    )
    assert periods.output.splitlines()[1:] == [
        "2026-03-29,2026-03-29T00:00:00Z,2026-03-30T00:00:00Z,10",
        "2026-03-30,2026-03-30T00:00:00Z,2026-03-31T00:00:00Z,1",
    ]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["nope"], "metrics: no metric named 'nope' (metrics: orders_per_day, revenue)"),
        (["revenue", "--group-by", "colour"], "--group-by: no column 'colour' in table 'orders'"),
        (["revenue", "--from", "March"], "--from: expected a date as YYYY-MM-DD; got 'March'"),
        (["revenue", "--period", "a week"], "--period: expected a number of days such as 7d"),
        (["revenue", "-o", "xml"], "--output: expected table, json or csv; got 'xml'"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(project, args, line):
    result = invoke(project, "show", *args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert line in result.stderr
