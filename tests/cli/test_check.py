from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from interlink import __version__
from interlink.cli import app
from interlink.errors import OAuthError

runner = CliRunner()
WIDE = {"COLUMNS": "200"}

VALID = """\
database: postgresql://app:${DB_PASSWORD:-hunter2}@db.example.com/interlink
connections:
  shop:
    base_url: https://shop.example.com/api
    auth: {type: bearer, token: '${SHOP_TOKEN:-tok}'}
    rate_limit: {rate: 10, per: 1s, burst: 20}
    retry: {max_attempts: 6}
  crm:
    base_url: https://crm.example.com
    transport: httpx
"""

INVALID = """\
connections:
  shop:
    base_url: ftp://shop.example.com
    auth:
      type: oath2
  crm:
    base_url: https://crm.example.com
    retyr: {}
"""


def write(tmp_path: Path, text: str, name: str = "interlink.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_prints_a_table(tmp_path):
    path = write(tmp_path, VALID)
    result = runner.invoke(app, ["check", "--config", str(path)], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "is valid: 2 connections" in out
    for text in ("shop", "https://shop.example.com/api", "bearer", "10/1s (burst 20)", "6"):
        assert text in out
    for text in ("crm", "https://crm.example.com", "none", "httpx", "auto"):
        assert text in out
    assert "postgresql" in out
    assert "postgresql://app:***@db.example.com/interlink" in out
    assert "hunter2" not in out
    assert "tok" not in out.replace("token", "")
    assert result.stderr == ""


def test_empty_config_is_valid(tmp_path):
    path = write(tmp_path, "")
    result = runner.invoke(app, ["check", "-c", str(path)], env=WIDE)
    assert result.exit_code == 0
    assert "No connections defined yet" in result.stdout
    assert "sqlite:///.interlink/interlink.db" in result.stdout


def test_invalid_config_prints_one_plain_line_per_error(tmp_path):
    path = write(tmp_path, INVALID)
    result = runner.invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:3: connections.shop.base_url: expected an http:// or https:// URL; "
        "got 'ftp://shop.example.com'",
        f"{path}:5: connections.shop.auth.type: expected one of none, api_key, bearer, basic, "
        "oauth2_client_credentials, oauth2; got 'oath2'; did you mean 'oauth2'?",
        f"{path}:8: connections.crm: unknown key 'retyr'; did you mean 'retry'?",
    ]


def test_errors_are_not_decorated(tmp_path):
    path = write(tmp_path, INVALID)
    result = runner.invoke(app, ["check", "--config", str(path)], color=True)
    assert result.exit_code == 2
    for mark in ("\x1b[", "│", "╭", "Traceback"):
        assert mark not in result.stderr


def test_missing_environment_variable(tmp_path):
    path = write(tmp_path, "connections:\n  s:\n    base_url: ${SHOP_URL}\n")
    result = runner.invoke(app, ["check", "--config", str(path)], env={"SHOP_URL": None})
    assert result.exit_code == 2
    assert result.stderr == (
        f"{path}:3: connections.s.base_url: environment variable SHOP_URL is not set "
        "(use ${SHOP_URL:-default} for a default)\n"
    )


def test_secret_from_environment_is_never_printed(tmp_path):
    path = write(tmp_path, "connections:\n  s:\n    base_url: 'ftp://h/${API_TOKEN}'\n")
    result = runner.invoke(app, ["check", "--config", str(path)], env={"API_TOKEN": "zzsecretzz"})
    assert result.exit_code == 2
    assert "zzsecretzz" not in result.output


def test_missing_file_default_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2
    assert result.stderr == "interlink.yaml: no such file (run 'interlink init' to create one)\n"


def test_default_path_is_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path, VALID)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check"], env=WIDE)
    assert result.exit_code == 0
    assert "interlink.yaml is valid" in result.stdout


def test_config_before_the_command(tmp_path):
    path = write(tmp_path, VALID, "other.yaml")
    result = runner.invoke(app, ["--config", str(path), "check"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "other.yaml is valid" in result.stdout


def test_config_on_the_command_wins(tmp_path):
    good = write(tmp_path, VALID, "good.yaml")
    bad = write(tmp_path, INVALID, "bad.yaml")
    result = runner.invoke(app, ["--config", str(good), "check", "--config", str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.stderr


def test_directory_instead_of_file(tmp_path):
    result = runner.invoke(app, ["check", "--config", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path}: is a directory, not a config file\n"


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"interlink {__version__}\n"


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "check" in result.output
    assert "init" in result.output


def test_any_interlink_error_becomes_one_line_and_its_exit_code():
    from interlink.cli.main import _InterlinkGroup

    other = typer.Typer(cls=_InterlinkGroup)

    @other.callback()
    def root():
        pass

    @other.command()
    def fail():
        raise OAuthError("invalid_client", "bad\nsecret", status_code=401)

    result = runner.invoke(other, ["fail"])
    assert result.exit_code == OAuthError.exit_code == 1
    assert result.stderr == "invalid_client: bad secret (HTTP 401)\n"


def test_cli_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, interlink.cli.main; "
        "print(sorted(m for m in ('rich', 'pydantic', 'yaml', 'interlink.config') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_check_lists_resources(tmp_path):
    from typer.testing import CliRunner

    from interlink.cli.main import app

    path = tmp_path / "interlink.yaml"
    path.write_text(
        "connections:\n  shop: {base_url: 'http://x'}\n"
        "resources:\n  shop:\n    customers:\n      path: /customers\n"
        "      paginate: offset\n"
    )
    result = CliRunner().invoke(app, ["check", "--config", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "shop.customers" in result.output and "offset" in result.output
