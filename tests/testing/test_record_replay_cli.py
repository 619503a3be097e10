"""`interlink read --record` / `--replay`, INTERLINK_REPLAY for a whole run, and the
`interlink_replay` fixture, against the sandbox shop (bearer token and API key)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from interlink.config import load_config
from interlink.connectors import Catalog
from interlink.sandbox import SandboxServer, create_shop_app

TOKEN = "recorded-bearer-4c2f9e"
API_KEY = "recorded-api-key-d81b"

CONFIG = """
database: sqlite:///{db}
connections:
  shop:
    base_url: {url}
    auth: {{type: bearer, token: "${{SHOP_TOKEN}}"}}
    headers: {{X-API-Key: "${{SHOP_KEY}}"}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 10, overlap: 0}}
    product:
      path: /products/7
    echo:
      path: /echo
      primary_key: path
pipelines:
  customers:
    source: shop.customers
    destination: sql:customers
"""

ENV = {"SHOP_TOKEN": TOKEN, "SHOP_KEY": API_KEY}


@pytest.fixture
def recorded(interlink_project):
    """Record three reads against a live sandbox, then stop it: everything after is offline."""
    project = interlink_project
    with SandboxServer(create_shop_app(records=25, token=TOKEN, api_key=API_KEY)) as server:
        project.write_config(CONFIG.format(db=project.path / "interlink.db", url=server.url))
        for resource in ("customers", "product", "echo"):
            result = project.run(
                "read",
                f"shop.{resource}",
                "-o",
                "jsonl",
                "--record",
                f"cassettes/{resource}",
                env=ENV,
            )
            assert f"exchanges in cassettes/{resource}.json" in result.stderr
    return project


def test_read_records_exchanges_without_any_secret(recorded):
    files = recorded.files("cassettes/*.json")
    assert [f.name for f in files] == ["customers.json", "echo.json", "product.json"]
    for file in files:
        text = file.read_text()
        assert TOKEN not in text and API_KEY not in text, file
    echo = json.loads((recorded.path / "cassettes/echo.json").read_text())["exchanges"][0]
    headers = echo["response"]["json"]["headers"]
    assert headers["authorization"] == "***" and headers["x-api-key"] == "***"
    pages = json.loads((recorded.path / "cassettes/customers.json").read_text())["exchanges"]
    assert [e["request"]["url"] for e in pages] == [
        "/customers?offset=0&limit=10",
        "/customers?offset=10&limit=10",
        "/customers?offset=20&limit=10",
    ]


def test_read_replays_offline(recorded):
    result = recorded.run(
        "read", "shop.customers", "-o", "jsonl", "--replay", "cassettes/customers", env=ENV
    )
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert ids == list(range(1, 26))
    # A single-object endpoint is one record, without `records:`.
    result = recorded.run(
        "read", "shop.product", "-o", "jsonl", "--replay", "cassettes/product", env=ENV
    )
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [7]


def test_a_replayed_request_never_recorded_fails_naming_it(recorded):
    result = recorded.run(
        "read", "shop.product", "--replay", "cassettes/customers", env=ENV, expect=1
    )
    assert "GET http://127.0.0.1:" in result.stderr and "/products/7" in result.stderr
    assert "never recorded in cassette" in result.stderr
    assert "cassettes/customers.json" in result.stderr


def test_record_and_replay_together_are_refused(recorded):
    result = recorded.run(
        "read", "shop.product", "--replay", "a", "--record", "b", env=ENV, expect=2
    )
    assert "--record and --replay" in result.stderr


def test_a_whole_run_replays_from_the_environment(recorded):
    env = {**ENV, "INTERLINK_REPLAY": str(recorded.path / "cassettes/customers")}
    recorded.run("run", "customers", env=env)
    with sqlite3.connect(recorded.path / "interlink.db") as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (25,)


async def test_the_replay_fixture_serves_a_catalog(recorded, interlink_replay, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    cassette = interlink_replay(recorded.path / "cassettes/customers")
    assert len(cassette) == 3
    async with Catalog(load_config(recorded.config_path)) as catalog:
        records = [r async for r in catalog.resource("shop.customers").records()]
    assert len(records) == 25


def test_run_records_and_replays_with_its_own_options(interlink_project):
    project = interlink_project
    with SandboxServer(create_shop_app(records=25, token=TOKEN, api_key=API_KEY)) as server:
        project.write_config(CONFIG.format(db=project.path / "interlink.db", url=server.url))
        project.run("run", "customers", "--record", "cassettes/run", env=ENV)
    text = (project.path / "cassettes/run.json").read_text()
    assert TOKEN not in text and API_KEY not in text
    (project.path / "interlink.db").unlink()  # the sandbox is gone: the replay is offline
    project.run("run", "customers", "--full-refresh", "--replay", "cassettes/run", env=ENV)
    with sqlite3.connect(project.path / "interlink.db") as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (25,)
    refused = project.run("run", "customers", "--record", "a", "--replay", "b", expect=2)
    assert "--record and --replay" in refused.stderr
