"""`interlink check` lists what it validated, in 80 columns: connections, resources with
their pagination, pipelines with destination, write mode, schedule and next run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from typer.testing import CliRunner

from interlink.cli._render_check import next_run
from interlink.cli.main import app

CONFIG = """\
database: sqlite:///{db}
connections:
  shop:
    base_url: https://shop.example.com/api/v2
    auth: {{type: bearer, token: check-list-secret-token}}
    rate_limit: {{rate: 10, per: 1s, burst: 20}}
  commerce:
    base_url: https://commerce.example.com
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 200}}
      incremental: {{field: updated_at, param: updated_since}}
    orders:
      path: /orders
      paginate: {{type: cursor, cursor_path: meta.next, cursor_param: after}}
  commerce:
    customers:
      path: /api/customers
      format: jsonapi
      paginate: {{type: next_url, next_path: links.next}}
pipelines:
  customers:
    source: shop.customers
    destination: commerce.customers
    match: email
    conflict: newest_wins
    timestamps: {{source: updated_at, target: updated_at}}
  orders:
    source: shop.orders
    destination: sql:orders
    write: append
    schedule: "*/15 * * * *"
"""


def test_check_lists_everything_it_validated_in_80_columns(tmp_path: Path) -> None:
    path = tmp_path / "interlink.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "state.db"))
    result = CliRunner().invoke(app, ["check", "-c", str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, out
    flat = " ".join(out.split())
    assert "is valid: 2 connections, 3 resources, 2 pipelines." in flat
    for expected in (
        "shop https://shop.example.com/api/v2",
        "auth bearer, rate limit 10/1s (burst 20), 4 attempts a request, auto",
        "shop.customers GET /customers",
        "pages: offset, page_size 200",
        "incremental: updated_at, sent as updated_since",
        "pages: cursor, cursor_path meta.next, cursor_param after",
        "records: JSON:API data",
        "pages: next_url, next_path links.next",
        "shop.customers -> commerce.customers (API: create or update), match email, "
        "conflict newest_wins",
        "no schedule: runs with `interlink run customers` or a job",
        "shop.orders -> table orders, write append",
        "schedule */15 * * * * (UTC): next run",
    ):
        assert expected in flat, f"{expected!r} not in:\n{out}"
    assert "check-list-secret-token" not in out
    assert "…" not in out


def test_next_run_is_the_next_tick_in_utc() -> None:
    now = dt.datetime(2026, 3, 1, 10, 7, 30, tzinfo=dt.UTC).timestamp()
    assert next_run("*/15 * * * *", now) == "2026-03-01 10:15 UTC (in 8 min)"
    assert next_run("0 3 * * *", now) == "2026-03-02 03:00 UTC (in 16.9 h)"


def test_next_run_reads_seconds_as_the_sixth_field() -> None:
    now = dt.datetime(2026, 3, 1, 10, 7, 30, tzinfo=dt.UTC).timestamp()
    assert next_run("*/15 * * * * 45", now) == "2026-03-01 10:15:45 UTC (in 8 min)"
