"""Every table the CLI draws, at 80 columns with realistic data: no header cut ("creat…")
or broken over lines, no line wider than the terminal, no empty zero-width column."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from interlink.cli import (
    _render,
    _render_connections,
    _render_jobs,
    _render_service,
    _render_worker,
)
from interlink.jobs import WorkerStats
from interlink.store import ApiKey
from interlink.sync import RunResult

NOW = time.time()


@pytest.fixture
def tables(monkeypatch) -> Iterator[list[Any]]:
    """Every Table printed while the test runs (also inside groups)."""
    from rich.console import Console
    from rich.table import Table

    seen: list[Any] = []
    original = Console.print

    def spy(self: Any, *objects: Any, **kwargs: Any) -> None:
        for shown in objects:
            if isinstance(shown, Table):
                seen.append(shown)
            for inner in getattr(shown, "renderables", []) or []:
                if isinstance(inner, Table):
                    seen.append(inner)
        original(self, *objects, **kwargs)

    monkeypatch.setattr(Console, "print", spy)
    yield seen


def _render_80(draw: Callable[[Any], None]) -> list[str]:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=80, highlight=False, color_system=None)
    draw(console)
    return out.getvalue().splitlines()


def _header_text(column: Any) -> str:
    return str(column.header.plain if hasattr(column.header, "plain") else column.header)


def _assert_fits(lines: list[str], tables: list[Any]) -> None:
    assert tables, "nothing was drawn as a table"
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    for table in tables:
        for column in table.columns:
            header = _header_text(column)
            if not header:
                continue
            assert any(header in line for line in lines), (
                f"header {header!r} is cut or broken over lines:\n{text}"
            )
    assert "…" not in "\n".join(line for line in lines if line.startswith(("┃", "│ id", "┏"))), text


def _run(status: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": 1042,
        "pipeline": "customers@acct_1001",
        "status": status,
        "started_at": NOW - 600,
        "finished_at": NOW - 540,
        "read": 125_000,
        "created": 12_000,
        "updated": 113_000,
        "unchanged": 0,
        "deleted": 0,
        "skipped": 0,
        "failed": 0,
        "pages": 1250,
        "message": None,
        "errors": [],
    }
    row.update(changes)
    return row


RUNS = [
    _run("succeeded"),
    _run(
        "failed",
        id=1043,
        pipeline="orders",
        message="GET http://127.0.0.1:9/v1/orders (4 attempts): ConnectError: cannot connect "
        "to 127.0.0.1:9: connection refused; check connections.shop.base_url",
    ),
    _run(
        "completed_with_errors",
        id=1044,
        failed=3,
        errors=[{"key": "17", "step": "write", "error": "IntegrityError: NOT NULL email"}],
    ),
    _run("cancelled", id=1045, message="interrupted by Ctrl-C (SIGINT)"),
]


def test_runs_fit_and_say_why(tables):
    lines = _render_80(lambda c: _render.show_runs(RUNS, c))
    _assert_fits(lines, tables)
    text = " ".join(" ".join(lines).split())
    assert "run 1043 failed: GET http://127.0.0.1:9/v1/orders" in text
    assert "check connections.shop.base_url" in text
    assert "run 1044 completed with errors: 3 records failed; first: record 17 (write)" in text
    assert "run 1045 cancelled: interrupted by Ctrl-C (SIGINT)" in text


def test_run_summary_fits_and_says_why(tables):
    result = RunResult(pipeline="customers", run_id=7, status="failed")
    result.counts.update(read=125_000, created=12_000, updated=113_000, pages=1250)
    result.elapsed = 61.2
    result.message = "GET https://api.example.com/v1/customers -> 500 (4 attempts): boom"
    lines = _render_80(lambda c: _render.show_run(result, c))
    _assert_fits(lines, tables)
    assert "why: GET https://api.example.com/v1/customers -> 500" in "\n".join(lines)


def test_records_fit_and_show_no_empty_columns(tables):
    records = [
        {
            "id": n,
            "email": f"customer{n}@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": "Analytical Engines Ltd",
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-06-01T12:34:56Z",
            "address": {"street": "1 Main St", "city": "London", "country": "GB"},
            "tags": ["vip", "newsletter"],
            "phone": "+44 20 7946 0000",
            "notes": None,
            "balance": 1234.5,
            "active": True,
            "locale": "en-GB",
        }
        for n in range(1, 21)
    ]
    lines = _render_80(lambda c: _render.show_records("shop.customers", records, c))
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    header = [line for line in lines if line.startswith("┃")]
    for line in header:
        cells = line.strip("┃").split("┃")
        assert all(cell.strip() for cell in cells), f"an empty column:\n{line}"
    assert "id" in lines[2] or any("id" in line for line in header)
    assert any("more fields" in line for line in lines), "the fields left out are named"


def test_account_runs_fit(tables):
    from interlink.sync import AccountRun

    runs = []
    for account, status in (("acct_1001", "failed"), ("acct_1002", "succeeded")):
        result = RunResult(pipeline="customers", account=account, run_id=3, status=status)
        result.counts.update(read=40, created=40)
        runs.append(AccountRun(account=account, status=status, result=result, message=None))
    lines = _render_80(lambda c: _render.show_account_runs("customers", runs, c))
    _assert_fits(lines, tables)


def test_conflicts_fit(tables):
    rows = [
        {
            "id": 12,
            "pipeline": "customers",
            "source_key": "1001",
            "target_key": "c-88",
            "source_record": {"email": "a@example.com", "phone": "1", "city": "Paris"},
            "target_record": {"email": "a@example.com", "phone": "2", "city": "Lyon"},
            "status": "open",
            "resolution": None,
            "created_at": NOW,
        }
    ]
    lines = _render_80(lambda c: _render.show_conflicts(rows, c))
    _assert_fits(lines, tables)


def test_worker_summary_fits(tables):
    stats = WorkerStats(completed=12_345, retried=12, failed=3, cancelled=1, reclaimed=2)
    lines = _render_80(lambda c: _render_worker.show_worker_stats(stats, c))
    _assert_fits(lines, tables)


def test_jobs_fit(tables):
    jobs = [
        {
            "id": 100 + n,
            "status": status,
            "kind": "pipeline.run",
            "pipeline": "customers",
            "attempts": 1,
            "max_attempts": 5,
            "created_at": NOW - 100,
            "started_at": NOW - 90,
            "finished_at": NOW - 30,
            "progress": {"read": 1200, "pages": 12},
            "error": "ServerError: GET https://api.example.com/x -> 503" if n else None,
        }
        for n, status in enumerate(("completed", "failed"))
    ]
    lines = _render_80(lambda c: _render_jobs.show_jobs(jobs, next_before=99, console=c))
    _assert_fits(lines, tables)


def test_api_keys_fit(tables):
    keys = [
        ApiKey(1, "ci deploys", "il_live_ab12", "write", NOW - 86400, NOW - 60, None),
        ApiKey(2, "dashboard", "il_live_cd34", "read", NOW - 86400, None, NOW),
    ]
    lines = _render_80(lambda c: _render_service.show_api_keys(keys, c))
    _assert_fits(lines, tables)


def test_connections_fit(tables):
    connections = [
        {
            "name": "commerce",
            "auth": "oauth2",
            "enabled": True,
            "accounts": [
                {
                    "account": "acct_1001",
                    "status": "connected",
                    "enabled": True,
                    "expires_at": NOW + 3600,
                }
            ],
            "last_success": {"run_id": 9, "finished_at": NOW - 60},
            "last_error": {"run_id": 8, "finished_at": NOW - 600},
        }
    ]
    lines = _render_80(lambda c: _render_connections.show_connections(connections, c))
    _assert_fits(lines, tables)


def test_help_summarises_each_command_in_whole_sentences():
    """`interlink --help` at 80 columns: each command's summary is flowed to the panel,
    never broken where its docstring's line ended (a line cut short though the next word
    fits), and says the docstring's first paragraph whole."""
    import inspect

    from typer.testing import CliRunner

    from interlink.cli.main import app

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(n for n, line in enumerate(lines) if "Commands" in line) + 1
    rows = [line[1:-1] for line in lines[start:] if line.startswith("│")]
    name, _, rest = rows[0].lstrip().partition(" ")
    column = len(rows[0]) - len(rest.lstrip())  # where the summaries start
    width = len(rows[0]) - column
    summaries: list[str] = []
    for row, following in zip(rows, [*rows[1:], ""], strict=True):
        text = row[column:].rstrip()
        if row[:column].strip():
            summaries.append(text)
        else:
            summaries[-1] += " " + text
        if following and not following[:column].strip():
            word = following[column:].split()[0]
            assert len(text) + 1 + len(word) > width - 1, f"cut short: {text!r}"
    for info in app.registered_commands:
        assert info.callback is not None and info.callback.__doc__
        first = " ".join(inspect.cleandoc(info.callback.__doc__).split("\n\n")[0].split())
        assert first in summaries, first
