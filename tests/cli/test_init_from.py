"""`interlink init --from URL`: the written file passes `interlink check` and `interlink run`
syncs the whole list into SQLite, every record exactly once, without editing. Against the
sandbox shop's every list style and stand-ins shaped like GitHub, Stripe, Shopify, JSON:API
and json-server (tests/connectors/api_shapes.py), on real servers on 127.0.0.1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from interlink.cli import app
from interlink.sandbox import SandboxServer, create_shop_app
from tests.connectors import api_shapes

runner = CliRunner()
TOKEN = "shop-s3cret-token"
ENV = {"INTERLINK_DATABASE_URL": None, "COLUMNS": "80"}


def _rows(tmp_path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / ".interlink" / "interlink.db") as db:
        return db.execute(f'SELECT "{table}"."id" FROM "{table}"').fetchall()


def _init_check_run(tmp_path: Path, url: str, *flags: str, env: dict[str, str] | None = None):
    env = {**ENV, **(env or {})}
    config = tmp_path / "interlink.yaml"
    result = runner.invoke(app, ["init", "--from", url, "--config", str(config), *flags], env=env)
    assert result.exit_code == 0, result.output
    text = config.read_text(encoding="utf-8")
    assert "# detected (" in text
    assert "interlink check" in result.stdout and "interlink run" in result.stdout
    checked = runner.invoke(app, ["check", "--config", str(config)], env=env)
    assert checked.exit_code == 0, checked.output
    name = next(iter(yaml.safe_load(text)["pipelines"]))
    ran = runner.invoke(app, ["run", name, "--config", str(config)], env=env)
    assert ran.exit_code == 0, ran.output
    return text, name, result


SHOP_STYLES = [
    ("/customers", "offset"),
    ("/customers/pages", "page"),
    ("/customers/cursor", "cursor"),
    ("/customers/link", "link_header"),
    ("/customers/next-url", "next_url"),
    ("/customers/wrapped", "offset"),
]


@pytest.mark.parametrize(("path", "kind"), SHOP_STYLES, ids=[p for p, _ in SHOP_STYLES])
def test_every_shop_list_style_syncs_whole(tmp_path, monkeypatch, path, kind):
    monkeypatch.chdir(tmp_path)
    with SandboxServer(create_shop_app(records=230, token=TOKEN)) as server:
        text, name, result = _init_check_run(
            tmp_path, server.url + path, "--bearer", TOKEN, env={"API_TOKEN": TOKEN}
        )
    assert TOKEN not in text and TOKEN not in result.output
    assert "token: ${API_TOKEN}" in text
    assert "API_TOKEN" in result.stdout
    written = yaml.safe_load(text)
    resource = written["resources"]["api"][name]
    assert resource["paginate"]["type"] == kind
    assert resource["incremental"] == {"field": "updated_at", "param": "updated_since"}
    ids = [row[0] for row in _rows(tmp_path, name)]
    assert sorted(ids) == list(range(1, 231))


STANDINS = [
    ("github", api_shapes.github_app, "/repos/o/r/issues", 95, "link_header"),
    ("stripe", api_shapes.stripe_app, "/v1/customers", 57, "cursor"),
    ("shopify", api_shapes.shopify_app, "/admin/api/2024-01/products.json", 120, "link_header"),
    ("jsonapi", api_shapes.jsonapi_app, "/api/articles", 44, "next_url"),
    ("json-server", api_shapes.json_server_app, "/posts", 33, "page"),
]


@pytest.mark.parametrize(
    ("label", "factory", "path", "count", "kind"), STANDINS, ids=[s[0] for s in STANDINS]
)
def test_public_api_shapes_sync_whole(tmp_path, monkeypatch, label, factory, path, count, kind):
    monkeypatch.chdir(tmp_path)
    with SandboxServer(factory(count)) as server:
        text, name, _ = _init_check_run(tmp_path, server.url + path)
    resource = next(iter(yaml.safe_load(text)["resources"]["api"].values()))
    assert resource["paginate"]["type"] == kind
    ids = [row[0] for row in _rows(tmp_path, name)]
    assert len(ids) == len(set(ids)) == count


def test_stripe_is_read_by_the_last_id_until_has_more_is_false(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SandboxServer(api_shapes.stripe_app(57)) as server:
        text, _, _ = _init_check_run(tmp_path, server.url + "/v1/customers")
    paginate = yaml.safe_load(text)["resources"]["api"]["customers"]["paginate"]
    assert paginate == {
        "type": "cursor",
        "cursor_field": "id",
        "cursor_param": "starting_after",
        "stop_when": {"path": "has_more", "equals": False},
    }


def test_json_server_pages_with_underscore_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SandboxServer(api_shapes.json_server_app(33)) as server:
        text, _, _ = _init_check_run(tmp_path, server.url + "/posts")
    paginate = yaml.safe_load(text)["resources"]["api"]["posts"]["paginate"]
    assert (paginate["page_param"], paginate["size_param"]) == ("_page", "_limit")


REFUSALS = [
    (api_shapes.repeating_app, "/items", "pages repeat"),
    (api_shapes.empty_app, "/things", "is empty"),
    (api_shapes.html_app, "/things", "not JSON (text/html)"),
    (api_shapes.unauthorized_app, "/things", "401 Unauthorized: add --bearer TOKEN"),
    (api_shapes.single_object_app, "/user", "one object (keys: id, login, name)"),
]


@pytest.mark.parametrize(
    ("factory", "path", "reason"), REFUSALS, ids=["repeats", "empty", "html", "401", "object"]
)
def test_what_cannot_be_a_resource_is_refused_with_its_reason(tmp_path, factory, path, reason):
    config = tmp_path / "interlink.yaml"
    with SandboxServer(factory()) as server:
        result = runner.invoke(
            app, ["init", "--from", server.url + path, "--config", str(config)], env=ENV
        )
    assert result.exit_code == 2, result.output
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not config.exists()


def test_a_refused_token_says_to_check_it_and_never_prints_it(tmp_path):
    config = tmp_path / "interlink.yaml"
    with SandboxServer(api_shapes.unauthorized_app("right")) as server:
        result = runner.invoke(
            app,
            ["init", "--from", server.url + "/things", "--config", str(config)]
            + ["--bearer", "wrong-t0ken"],
            env=ENV,
        )
    assert result.exit_code == 2
    assert "credentials given were refused" in result.stderr
    assert "wrong-t0ken" not in result.output


def test_a_token_given_as_a_variable_is_written_as_that_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"MY_API_TOKEN": "right"}
    with SandboxServer(api_shapes.unauthorized_app("right")) as server:
        text, name, result = _init_check_run(
            tmp_path, server.url + "/things", "--bearer", "${MY_API_TOKEN}", env=env
        )
    assert "token: ${MY_API_TOKEN}" in text and "right" not in text
    assert "Set " not in result.stdout
    assert sorted(row[0] for row in _rows(tmp_path, name)) == [1, 2]


def test_init_from_refuses_to_overwrite_without_force(tmp_path):
    config = tmp_path / "interlink.yaml"
    config.write_text("connections: {}\n", encoding="utf-8")
    result = runner.invoke(app, ["init", "--from", "http://127.0.0.1:9/x", "-c", str(config)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr


def test_an_api_key_in_the_query_is_written_as_a_variable_and_never_stored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SandboxServer(create_shop_app(records=120, api_key="k3y-s3cret")) as server:
        text, name, result = _init_check_run(
            tmp_path,
            server.url + "/customers/next-url",
            "--api-key-param",
            "api_key=k3y-s3cret",
            env={"API_API_KEY": "k3y-s3cret"},
        )
    assert "k3y-s3cret" not in text and "k3y-s3cret" not in result.output
    assert yaml.safe_load(text)["connections"]["api"]["auth"] == {
        "type": "api_key",
        "in": "query",
        "name": "api_key",
        "key": "${API_API_KEY}",
    }
    assert sorted(row[0] for row in _rows(tmp_path, name)) == list(range(1, 121))


def test_unix_times_are_found_as_the_incremental_field(tmp_path, monkeypatch):
    """`updated: 1767229200` (numbers) is a change time like an ISO string is: found, its
    filter parameter tried, and the written pipeline reads only what changed after."""
    monkeypatch.chdir(tmp_path)
    with SandboxServer(api_shapes.epoch_app(64)) as server:
        text, name, result = _init_check_run(tmp_path, f"{server.url}/events")
        resource = next(iter(yaml.safe_load(text)["resources"].values()))
        resource = next(iter(resource.values()))
        assert resource["incremental"] == {"field": "updated", "param": "updated_since"}
        assert len(_rows(tmp_path, name)) == 64


ONE_PAGE = [
    # (label, app factory, path, records at init: one page, records later, paginate type)
    ("github-full-page", api_shapes.github_app, "/repos/o/r/issues", 30, 95, "link_header"),
    ("github-few", api_shapes.github_app, "/repos/o/r/issues", 7, 95, "link_header"),
    ("stripe", api_shapes.stripe_app, "/v1/customers", 10, 57, "cursor"),
    ("stripe-few", api_shapes.stripe_app, "/v1/customers", 4, 57, "cursor"),
    ("shopify", api_shapes.shopify_app, "/admin/api/2024-01/products.json", 50, 120, "link_header"),
    ("jsonapi", api_shapes.jsonapi_app, "/api/articles", 10, 44, "next_url"),
    ("json-server", api_shapes.json_server_app, "/posts", 10, 33, "page"),
    ("shop-offset", lambda n: create_shop_app(records=n), "/customers", 50, 230, "offset"),
    ("shop-cursor", lambda n: create_shop_app(records=n), "/customers/cursor", 50, 230, "cursor"),
    ("shop-pages", lambda n: create_shop_app(records=n), "/customers/pages", 50, 230, "page"),
    ("shop-link", lambda n: create_shop_app(records=n), "/customers/link", 50, 230, "link_header"),
]


@pytest.mark.parametrize(
    ("label", "factory", "path", "small", "large", "kind"), ONE_PAGE, ids=[s[0] for s in ONE_PAGE]
)
def test_a_list_on_one_page_is_paged_once_it_grows(
    tmp_path, monkeypatch, label, factory, path, small, large, kind
):
    """A list that fits on its first page today: `init --from` proves its pagination with
    a smaller page instead of refusing it or writing `type: single`, so the same file reads
    the whole list once it outgrows that page."""
    monkeypatch.chdir(tmp_path)
    with SandboxServer(factory(small)) as server:
        text, name, _ = _init_check_run(tmp_path, server.url + path)
        old = server.url
    resource = next(iter(yaml.safe_load(text)["resources"]["api"].values()))
    assert resource["paginate"]["type"] == kind, text
    assert len(_rows(tmp_path, name)) == small
    config = tmp_path / "interlink.yaml"
    with SandboxServer(factory(large)) as server:
        config.write_text(text.replace(old, server.url), encoding="utf-8")
        ran = runner.invoke(app, ["run", name, "--config", str(config), "--full-refresh"], env=ENV)
    assert ran.exit_code == 0, ran.output
    ids = [row[0] for row in _rows(tmp_path, name)]
    assert len(ids) == len(set(ids)) == large
