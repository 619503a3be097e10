"""`interlink demo` and `interlink sandbox` run for real: sandbox server, config, ApiClient."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from interlink.cli._demo import DEFAULT_PROJECT, run_demo
from interlink.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / DEFAULT_PROJECT


def test_demo_reads_every_record_once_and_creates_once_despite_faults():
    calls: list[tuple[str, int]] = []

    def advance(kind: str, steps: int, *, total: int | None = None) -> None:
        calls.append((kind, steps))

    result = asyncio.run(
        run_demo(PROJECT, records=730, creates=40, seed=3, faults=True, advance=advance)
    )
    assert result.read_exactly_once
    assert result.created_exactly_once
    assert result.pages == 8
    assert result.client is not None
    # The faults really happened and were absorbed by retries.
    assert sum(result.server["faults"].values()) > 0
    assert result.client.retries > 0
    assert sum(steps for kind, steps in calls if kind == "read") == 8
    assert sum(steps for kind, steps in calls if kind == "create") == 40


def test_demo_command_prints_the_summary_and_exits_zero():
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["demo", "--config", str(PROJECT), "--records", "150", "--creates", "5", "--no-faults"],
    )
    assert result.exit_code == 0, result.output
    assert "customers read" in result.output
    assert "150 in 2 pages" in result.output
    assert "exactly once" in result.output


def test_demo_with_a_broken_project_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "interlink.yaml"
    bad.write_text("connections:\n  shop:\n    base_url: ftp://nope\n")
    result = CliRunner().invoke(app, ["demo", "--config", str(bad)])
    assert result.exit_code == 2
    assert "connections.shop.base_url" in result.output
