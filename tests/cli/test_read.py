"""`interlink read` against a real sandbox server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.sandbox import SandboxServer, create_shop_app

CONFIG = """
connections:
  shop:
    base_url: {url}
    auth: {{type: bearer, token: sandbox-token}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 50}}
      incremental: {{field: updated_at, param: updated_since}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[str]:
    with SandboxServer(create_shop_app(records=120, token="sandbox-token")) as server:
        path = tmp_path_factory.mktemp("read") / "interlink.yaml"
        path.write_text(CONFIG.format(url=server.url))
        yield str(path)


def test_table_output_defaults_to_twenty_records(project):
    result = CliRunner().invoke(app, ["read", "shop.customers", "--config", project])
    assert result.exit_code == 0, result.output
    assert "shop.customers: 20 records in 1 pages" in result.output
    assert "email" in result.output


def test_jsonl_prints_every_record_once(project):
    result = CliRunner().invoke(app, ["read", "shop.customers", "-c", project, "-o", "jsonl"])
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    ids = [json.loads(line)["id"] for line in lines]
    assert ids == list(range(1, 121))


def test_since_and_limit(project):
    result = CliRunner().invoke(
        app,
        [
            "read",
            "shop.customers",
            "-c",
            project,
            "-o",
            "jsonl",
            "--limit",
            "7",
            "--since",
            "2020-01-01T00:00:00Z",
        ],
    )
    assert result.exit_code == 0
    assert len([line for line in result.stdout.splitlines() if line.startswith("{")]) == 7


def test_unknown_resource_and_bad_output_exit_2(project):
    unknown = CliRunner().invoke(app, ["read", "shop.nothing", "-c", project])
    assert unknown.exit_code == 2
    assert "unknown resource 'shop.nothing'; known: shop.customers" in unknown.output
    bad = CliRunner().invoke(app, ["read", "shop.customers", "-c", project, "-o", "xml"])
    assert bad.exit_code == 2
    assert "--output: expected table or jsonl" in bad.output


def test_api_failure_exits_1_with_one_line(tmp_path):
    with SandboxServer(create_shop_app(records=5, token="other")) as server:
        path = tmp_path / "interlink.yaml"
        path.write_text(CONFIG.format(url=server.url))
        result = CliRunner().invoke(app, ["read", "shop.customers", "-c", str(path)])
    assert result.exit_code == 1
    assert "-> 401" in result.output
    assert "sandbox-token" not in result.output


def test_verbose_logs_every_request_without_the_token(project):
    import logging

    try:
        result = CliRunner().invoke(
            app, ["-v", "read", "shop.customers", "-c", project, "--limit", "60"]
        )
    finally:
        logger = logging.getLogger("interlink")
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
    assert result.exit_code == 0, result.output
    requests = [line for line in result.output.splitlines() if "GET " in line]
    assert len(requests) >= 2, result.output
    assert "sandbox-token" not in result.output
