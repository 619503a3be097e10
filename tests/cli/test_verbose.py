"""`-v`, `-vv` and `--log-level` on every command, before or after its name, against a real
sandbox shop: one line per request with its secrets masked, headers only with `-vv`."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli._logging import configure_logging, hoist_global_options
from interlink.cli.main import app
from interlink.sandbox import SandboxServer, create_shop_app

TOKEN = "verbose-shop-token-1234"
KEY = "query-key-5678-secret"

CONFIG = """
database: sqlite:///{db}
connections:
  shop:
    base_url: {url}
    auth: {{type: bearer, token: {token}}}
    params: {{api_key: {key}}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 25}}
pipelines:
  customers:
    source: shop.customers
    destination: sql:customers
"""

REQUEST_LINE = re.compile(
    r"GET http://127\.0\.0\.1:\d+/customers\?\S+ -> 200 in [\d.]+ ms "
    r"\(attempt 1, rate-limit wait [\d.]+ s\)"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Iterator[Path]:
    with SandboxServer(create_shop_app(records=60, token=TOKEN)) as server:
        folder = tmp_path_factory.mktemp("verbose")
        path = folder / "interlink.yaml"
        path.write_text(CONFIG.format(url=server.url, token=TOKEN, key=KEY, db=folder / "state.db"))
        yield path


@pytest.fixture(autouse=True)
def _quiet_afterwards() -> Iterator[None]:
    yield
    configure_logging(0, None, None)  # takes out what the command installed


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "100"})
    return result.exit_code, result.stdout, result.stderr


def _requests(err: str) -> list[str]:
    return [line for line in err.splitlines() if REQUEST_LINE.search(line)]


@pytest.mark.parametrize("where", ["before", "after"])
def test_v_prints_one_line_per_request_before_or_after_the_command(project, where):
    command = ["read", "shop.customers", "-c", str(project), "-o", "jsonl"]
    args = ["-v", *command] if where == "before" else [*command, "-v"]
    code, out, err = _invoke(*args)
    assert code == 0, err
    assert len(_requests(err)) == 3, err  # 60 records, 25 a page
    assert TOKEN not in err + out and KEY not in err + out
    assert "> authorization" not in err.lower()  # headers are -vv's


def test_without_v_nothing_is_logged(project):
    code, _, err = _invoke("read", "shop.customers", "-c", str(project), "-o", "jsonl")
    assert code == 0, err
    assert _requests(err) == []


def test_vv_adds_masked_request_and_response_headers(project):
    code, out, err = _invoke("run", "customers", "-c", str(project), "-vv")
    assert code == 0, err
    assert len(_requests(err)) == 3, err
    lowered = err.lower()
    assert "> authorization: ***" in lowered, err
    assert "< http 200" in lowered and "< content-type: application/json" in lowered
    assert TOKEN not in err + out and KEY not in err + out


def test_log_level_after_the_command_sets_interlinks_level(project):
    code, _, err = _invoke("run", "customers", "-c", str(project), "--log-level", "debug")
    assert code == 0, err
    assert _requests(err), err  # debug shows the requests too
    code, _, err = _invoke("--log-level=warning", "run", "customers", "-c", str(project))
    assert code == 0, err
    assert _requests(err) == []


def test_a_bad_log_level_names_the_choices(project):
    result = CliRunner().invoke(app, ["check", "-c", str(project), "--log-level", "loud"])
    assert result.exit_code == 2
    shown = " ".join(result.output.replace("│", " ").split())
    assert "--log-level" in shown and "debug, info, warning, error; got 'loud'" in shown


def test_global_options_are_hoisted_up_to_a_double_dash():
    assert hoist_global_options(["run", "crm", "-vv", "--log-level", "info"]) == [
        "-vv",
        "--log-level",
        "info",
        "run",
        "crm",
    ]
    assert hoist_global_options(["jobs", "list", "--verbose", "--", "-v"]) == [
        "--verbose",
        "jobs",
        "list",
        "--",
        "-v",
    ]
    assert hoist_global_options(["read", "a.b", "--log-level=debug"]) == [
        "--log-level=debug",
        "read",
        "a.b",
    ]


def test_the_request_log_costs_nothing_when_off():
    # The retry transport checks one logger's level and returns: nothing is formatted.
    logger = logging.getLogger("interlink.http")
    assert not logger.isEnabledFor(logging.DEBUG)
