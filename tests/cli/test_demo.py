"""`interlink demo` runs the main job for real: sandbox servers, config, two syncs, and a
change the shop sends to interlink's own API by webhook."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from typer.testing import CliRunner

from interlink.cli._demo import (
    DEFAULT_PROJECT,
    TOKEN,
    WEBHOOK_COMPANY,
    WEBHOOK_CUSTOMER,
    _Sandbox,
    _webhook_step,
    run_demo,
)
from interlink.cli.main import app
from interlink.config import load_config
from interlink.sandbox import FaultConfig, SandboxServer, create_sandbox_app
from interlink.store import Store

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / DEFAULT_PROJECT


def test_demo_syncs_changes_only_and_settles_conflicts(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERLINK_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    threads = set(threading.enumerate())
    result = run_demo(PROJECT, records=80, seed=3, faults=True)
    assert result.ok, [(c.what, c.expected, c.found) for c in result.checks if not c.ok]
    first, orders, second = result.runs
    assert first.counts["read"] == 80
    assert first.counts["created"] == 80 - 8 and first.counts["updated"] == 8
    assert orders.counts["created"] == orders.counts["read"] > 80
    assert second.counts["updated"] == 2 and second.counts["skipped"] == 1
    assert len(result.checks) == 9 and all(check.ok for check in result.checks)
    # The webhook step: the shop's event was stored and imported customer 7 by id.
    step = result.webhook
    assert step is not None and step.url.endswith("/api/v1/webhooks/shop")
    assert step.stats["sent"] == len(step.deliveries) >= 1 and step.stats["failed"] == 0
    for delivery in step.deliveries:
        assert (delivery.event_type, delivery.status) == ("customer.updated", "processed")
        assert delivery.result is not None and delivery.result["record_id"] == WEBHOOK_CUSTOMER
        assert delivery.result["run_status"] == "succeeded"
    assert result.checks[-2].found == "processed"
    assert result.checks[-1].found == WEBHOOK_COMPANY
    # Servers, the worker and the inbox's writer are all gone.
    assert set(threading.enumerate()) <= threads


def test_demo_command_prints_the_summary_and_exits_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERLINK_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    result = CliRunner().invoke(
        app, ["demo", "--config", str(PROJECT), "--records", "40", "--no-faults"]
    )
    assert result.exit_code == 0, result.output
    assert "What the demo verified" in result.output
    assert "MISMATCH" not in result.output
    assert "By webhook, after the runs:" in result.output
    assert "the shop sent 1 signed event (0 retried, 0 failed)" in result.output
    assert "/api/v1/webhooks/shop" in result.output
    assert "customer.updated" in result.output and "processed (run 4)" in result.output
    assert "│ webhook delivery" in result.output  # its Check (the row wraps)
    assert all(len(line) <= 80 for line in result.output.splitlines())


def test_demo_with_a_broken_project_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "interlink.yaml"
    bad.write_text("connections:\n  shop:\n    base_url: ftp://nope\n")
    result = CliRunner().invoke(app, ["demo", "--config", str(bad)])
    assert result.exit_code == 2
    assert "connections.shop.base_url" in result.output


def test_demo_without_the_shop_webhook_source_exits_2_naming_it(tmp_path):
    text = PROJECT.read_text()
    project = tmp_path / "interlink.yaml"
    project.write_text(text[: text.index("\nwebhooks:")] + "\n")
    result = CliRunner().invoke(app, ["demo", "--config", str(project), "--records", "20"])
    assert result.exit_code == 2
    assert "webhooks" in result.output and "'shop'" in result.output


def _step(tmp_path, project, faults=None, seed=1):
    """The demo's webhook step alone, against a fresh suite: (step, checks, shop stats)."""
    db = tmp_path / "demo.db"
    suite = create_sandbox_app(
        records=20, seed=seed, token=TOKEN, faults=faults, commerce_records=4, commerce_overlap=2
    )
    with SandboxServer(suite) as server:
        env = {"SANDBOX_URL": server.url, "INTERLINK_DATABASE_URL": f"sqlite:///{db}"}
        config = load_config(project, env=env)
        store = Store.open(config.database)
        sandbox = _Sandbox(server.url)
        try:

            def company(customer):
                found = sandbox.commerce_by_email(customer["email"])
                return str(found.get("attributes", {}).get("company"))

            step, checks = _webhook_step(config, store, sandbox, company, lambda text: None)
            stats = httpx.get(f"{server.url}/shop/_stats").json()
        finally:
            sandbox.close()
            store.close()
    return step, checks, stats


def test_a_patch_sent_twice_makes_two_deliveries_and_both_are_accepted(tmp_path):
    # With this seed the shop applies the demo's PATCH, loses its answer, and the demo sends
    # it again: two changes, two events, two deliveries, each imported (idempotently).
    faults = FaultConfig(lost_response_rate=0.3, seed=12)
    step, checks, stats = _step(tmp_path, PROJECT, faults=faults, seed=12)
    assert stats["faults"]["lost_response"] >= 1 and stats["updates"] == 2, stats
    assert [d.status for d in step.deliveries] == ["processed", "processed"]
    assert len({d.delivery_id for d in step.deliveries}) == 2
    assert [(c.found, c.ok) for c in checks] == [("processed", True), (WEBHOOK_COMPANY, True)]


def test_the_webhook_checks_fail_when_the_delivery_does_nothing(tmp_path):
    text = PROJECT.read_text()
    action = "customer.updated: {run: customers, record: data.id}"
    assert action in text
    project = tmp_path / "interlink.yaml"
    project.write_text(text.replace(action, "customer.updated: ignore"))
    threads = set(threading.enumerate())
    step, checks, _ = _step(tmp_path, project)
    assert [d.status for d in step.deliveries] == ["ignored"]
    assert [c.ok for c in checks] == [False, False]
    assert checks[0].found == "0 of 1 processed"
    assert set(threading.enumerate()) <= threads
