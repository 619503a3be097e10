"""`interlink demo` runs the main job for real: sandbox servers, config, two syncs."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from interlink.cli._demo import DEFAULT_PROJECT, run_demo
from interlink.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / DEFAULT_PROJECT


def test_demo_syncs_changes_only_and_settles_conflicts(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERLINK_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    result = run_demo(PROJECT, records=80, seed=3, faults=True)
    assert result.ok, [(c.what, c.expected, c.found) for c in result.checks if not c.ok]
    first, orders, second = result.runs
    assert first.counts["read"] == 80
    assert first.counts["created"] == 80 - 8 and first.counts["updated"] == 8
    assert orders.counts["created"] == orders.counts["read"] > 80
    assert second.counts["updated"] == 2 and second.counts["skipped"] == 1
    assert len(result.checks) == 7 and all(check.ok for check in result.checks)


def test_demo_command_prints_the_summary_and_exits_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERLINK_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    result = CliRunner().invoke(
        app, ["demo", "--config", str(PROJECT), "--records", "40", "--no-faults"]
    )
    assert result.exit_code == 0, result.output
    assert "What the demo verified" in result.output
    assert "MISMATCH" not in result.output


def test_demo_with_a_broken_project_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "interlink.yaml"
    bad.write_text("connections:\n  shop:\n    base_url: ftp://nope\n")
    result = CliRunner().invoke(app, ["demo", "--config", str(bad)])
    assert result.exit_code == 2
    assert "connections.shop.base_url" in result.output
