"""`interlink inspect URL` and `interlink init` without `--from`: the starter's example
pipeline runs against the shop."""

from __future__ import annotations

import sqlite3

import typer
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.sandbox import SandboxServer, create_shop_app
from tests.connectors import api_shapes

runner = CliRunner()


def test_inspect_shows_each_decision_in_80_columns_and_the_yaml():
    with SandboxServer(api_shapes.shopify_app(120)) as server:
        result = runner.invoke(
            app,
            ["inspect", server.url + "/admin/api/2024-01/products.json"]
            + ["--header", "X-Shopify-Access-Token: shpat_s3cret"],
            env={"COLUMNS": "200"},
        )
    assert result.exit_code == 0, result.output
    out = result.stdout
    table = out.split("\n\n")[0].splitlines()
    assert max(len(line.rstrip()) for line in table) <= 80
    for what in ("records", "pages", "key", "changes"):
        assert any(line.startswith(f"│ {what}") for line in table), what
    assert "(`page_info`)" in out and "param: updated_at_min" in out
    assert "X-Shopify-Access-Token: ${API_X_SHOPIFY_ACCESS_TOKEN}" in out
    assert "shpat_s3cret" not in out


def test_inspect_names_the_flag_a_401_needs():
    with SandboxServer(api_shapes.unauthorized_app()) as server:
        result = runner.invoke(app, ["inspect", server.url + "/things"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "the API answered 401 Unauthorized: add --bearer TOKEN"


def test_inspect_refuses_two_kinds_of_auth():
    result = runner.invoke(
        app, ["inspect", "http://127.0.0.1:9/x", "--bearer", "a", "--basic", "u:p"]
    )
    assert result.exit_code == 2
    assert "give one of --bearer" in result.stderr


def test_the_starter_example_runs_against_the_sandbox_shop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init"]).exit_code == 0
    with SandboxServer(create_shop_app(records=150, token="t0ken")) as server:
        env = {"SHOP_URL": server.url, "SHOP_TOKEN": "t0ken", "INTERLINK_DATABASE_URL": None}
        checked = runner.invoke(app, ["check"], env=env)
        assert checked.exit_code == 0, checked.output
        ran = runner.invoke(app, ["run", "customers"], env=env)
        assert ran.exit_code == 0, ran.output
    with sqlite3.connect(tmp_path / ".interlink" / "interlink.db") as db:
        assert db.execute("SELECT count(DISTINCT id), count(*) FROM customers").fetchone() == (
            150,
            150,
        )


def test_init_without_from_names_only_commands_that_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0
    text = (tmp_path / "interlink.yaml").read_text(encoding="utf-8")
    import re

    named = set(re.findall(r"`interlink (\w+)", text + result.stdout))
    assert named <= {c.name for c in typer.main.get_command(app).commands.values()}  # type: ignore[attr-defined]
    assert {"check", "run", "read", "init"} <= named
