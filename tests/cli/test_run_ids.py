"""`interlink run PIPELINE --id ID` against a real sandbox and a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.sandbox import SandboxServer, create_shop_app

TOKEN = "sandbox-token"
CONFIG = """
database: sqlite:///{db}
connections:
  shop:
    base_url: {url}
    auth: {{type: bearer, token: {token}}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 50}}
      incremental: {{field: updated_at, param: updated_since}}
    products:
      type: graphql
      query: "query {{ products {{ id }} }}"
      records: data.products
      paginate: single
pipelines:
  customers:
    source: shop.customers
    destination: sql:customers
  products:
    source: shop.products
    destination: sql:products
"""


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with SandboxServer(create_shop_app(records=120, token=TOKEN)) as server:
        yield server


@pytest.fixture
def project(shop, tmp_path) -> Path:
    path = tmp_path / "interlink.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "interlink.db", url=shop.url, token=TOKEN))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def table(project: Path) -> dict[int, str]:
    with sqlite3.connect(project.parent / "interlink.db") as conn:
        return dict(conn.execute("SELECT id, company FROM customers").fetchall())


def test_run_by_id_writes_those_records(shop, project):
    httpx.patch(
        f"{shop.url}/customers/42",
        json={"company": "From The Command Line"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).raise_for_status()
    code, out, err = invoke("run", "customers", "--id", "42", "--id", "7", "-c", str(project))
    assert code == 0, (out, err)
    assert "(by id)" in out and "succeeded" in out
    assert "2 of 2 records fetched by id" in out
    assert table(project) == {42: "From The Command Line", 7: table(project)[7]}

    with sqlite3.connect(project.parent / "interlink.db") as conn:
        status, warnings = conn.execute("SELECT status, warnings FROM interlink_runs").fetchone()
    assert status == "succeeded" and "a run by id (42, 7)" in warnings


def test_an_unknown_id_exits_1_and_names_it(project):
    code, out, err = invoke("run", "customers", "--id", "5", "--id", "987654", "-c", str(project))
    assert code == 1, (out, err)
    assert "completed_with_errors" in out
    assert "record 987654 (fetch)" in out and "404" in " ".join(out.split())
    assert set(table(project)) == {5}


@pytest.mark.parametrize("flag", [["--limit", "3"], ["--full-refresh"]])
def test_id_with_a_whole_read_flag_is_a_usage_error(project, flag):
    code, out, err = invoke("run", "customers", "--id", "5", *flag, "-c", str(project))
    assert code == 2
    assert err.splitlines() == [
        f"--id cannot be combined with {flag[0]}: a run by id fetches only the records it names"
    ]
    assert not (project.parent / "interlink.db").exists(), "refused before the database"


def test_a_source_that_cannot_fetch_by_id_exits_2(project):
    code, out, err = invoke("run", "products", "--id", "1", "-c", str(project))
    assert code == 2, (out, err)
    (line,) = err.splitlines()
    assert line.startswith(f"{project}:") and "pipelines.products.source" in line
    assert "graphql resource" in line
    code, out, err = invoke("run", "customers", "--id", "..", "-c", str(project))
    assert code == 2 and err.splitlines() == ["pipeline customers: '..' cannot be an id"]
