"""`.env` beside interlink.yaml (issue 16, section 4): read by every command that loads the
config, never over the real environment, its values masked like `${VAR}`'s."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli import app
from interlink.config import load_config, load_config_source, parse_dotenv
from interlink.errors import ApiError, ConfigError
from interlink.http import client_from_config
from interlink.sandbox import SandboxServer

SECRET = "tok-3f9a1c77e2"

CONFIG = """\
connections:
  shop:
    base_url: ${SHOP_URL:-https://shop.example.com}
    auth: {type: bearer, token: '${SHOP_TOKEN}'}
"""


def project(tmp_path: Path, dotenv: str | None, config: str = CONFIG) -> Path:
    path = tmp_path / "interlink.yaml"
    path.write_text(config)
    if dotenv is not None:
        (tmp_path / ".env").write_text(textwrap.dedent(dotenv))
    return path


def token(path: Path, env: dict[str, str] | None = None, **options: bool) -> str:
    config = load_config(path, env={} if env is None else env, **options)
    auth = config.connections["shop"].auth
    return auth.token.get_secret_value()  # type: ignore[union-attr]


# --- the format ------------------------------------------------------------------------


def test_the_forms_a_dotenv_file_holds():
    text = textwrap.dedent(
        """\
        # a comment, then a blank line

        PLAIN=value
        export EXPORTED=1
          INDENTED = spaced out
        DOUBLE="a \\"quoted\\" line\\nand a second"
        SINGLE='^a$\\d ${NOT_EXPANDED}'
        COMMENTED=abc # a comment
        HASH=a#b
        QUOTED_HASH="a # b"  # a comment
        EMPTY=
        EMPTY_QUOTES=""
        REPEATED=first
        REPEATED=second
        """
    )
    assert parse_dotenv(text, file=".env") == {
        "PLAIN": "value",
        "EXPORTED": "1",
        "INDENTED": "spaced out",
        "DOUBLE": 'a "quoted" line\nand a second',
        "SINGLE": "^a$\\d ${NOT_EXPANDED}",
        "COMMENTED": "abc",
        "HASH": "a#b",
        "QUOTED_HASH": "a # b",
        "EMPTY": "",
        "EMPTY_QUOTES": "",
        "REPEATED": "second",
    }


def test_trailing_blanks_of_an_unquoted_value_are_dropped():
    assert parse_dotenv("A = b c \t \r\n", file=".env") == {"A": "b c"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"just-{SECRET}", "expected NAME=VALUE"),
        (f"1TOKEN={SECRET}", "expected NAME=VALUE"),
        (f"MY-TOKEN={SECRET}", "expected NAME=VALUE"),
        (f'TOKEN="{SECRET}', 'TOKEN: the closing " is missing'),
        (f"TOKEN='{SECRET}", "TOKEN: the closing ' is missing"),
        (f'TOKEN="{SECRET}" trailing', "TOKEN: text after the closing quote"),
    ],
)
def test_a_malformed_line_names_file_and_line_never_its_text(line, message):
    with pytest.raises(ConfigError) as info:
        parse_dotenv(f"OK=1\n\n{line}\n", file="/srv/app/.env")
    assert str(info.value).startswith(f"/srv/app/.env:3: {message}")
    assert SECRET not in str(info.value)


def test_every_malformed_line_is_listed():
    with pytest.raises(ConfigError) as info:
        parse_dotenv("A=1\nbad one\nB=2\nbad two\n", file=".env")
    assert [e.line for e in info.value.errors] == [2, 4]


# --- where it is read, and what wins -----------------------------------------------------


def test_dotenv_beside_the_config_fills_its_references(tmp_path):
    path = project(tmp_path, f"SHOP_TOKEN={SECRET}\n")
    assert token(path) == SECRET


def test_the_real_environment_wins_over_dotenv(tmp_path):
    path = project(tmp_path, f"SHOP_TOKEN={SECRET}\n")
    assert token(path, {"SHOP_TOKEN": "from-the-environment"}) == "from-the-environment"
    assert token(path, {"SHOP_TOKEN": ""}) == ""  # set, if empty: still the environment's


def test_process_environment_wins_too(tmp_path, monkeypatch):
    path = project(tmp_path, f"SHOP_TOKEN={SECRET}\nSHOP_URL=https://dotenv.example.com\n")
    monkeypatch.setenv("SHOP_URL", "https://real.example.com")
    config = load_config(path)
    assert config.connections["shop"].base_url == "https://real.example.com"


def test_dotenv_can_be_turned_off_and_is_optional(tmp_path):
    path = project(tmp_path, f"SHOP_TOKEN={SECRET}\n")
    with pytest.raises(ConfigError, match="SHOP_TOKEN is not set"):
        token(path, dotenv=False)
    (tmp_path / ".env").unlink()
    assert token(path, {"SHOP_TOKEN": "x"}) == "x"


def test_only_the_dotenv_beside_the_config_is_read(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    path = project(tmp_path / "conf", None)
    (tmp_path / ".env").write_text(f"SHOP_TOKEN={SECRET}\n")
    monkeypatch.chdir(tmp_path)  # a .env in the working directory is not the config's
    with pytest.raises(ConfigError, match="SHOP_TOKEN is not set"):
        token(path)


def test_a_dotenv_that_is_a_folder_is_an_error_naming_it(tmp_path):
    path = project(tmp_path, None)
    (tmp_path / ".env").mkdir()
    with pytest.raises(ConfigError) as info:
        token(path)
    assert str(info.value) == f"{tmp_path / '.env'}: is a folder; a .env file holds KEY=VALUE lines"


# --- masked like ${VAR} ------------------------------------------------------------------


def test_dotenv_secrets_are_masked_in_config_errors(tmp_path):
    config = CONFIG + "    timeout: '${SHOP_TOKEN}'\n"
    path = project(tmp_path, f"SHOP_TOKEN={SECRET}\n", config)
    with pytest.raises(ConfigError) as info:
        load_config_source(path, env={})
    assert SECRET not in str(info.value)
    assert "timeout" in str(info.value)


def test_dotenv_secrets_are_masked_in_api_errors(tmp_path):
    """A server that echoes the token back: the error interlink raises shows `***`."""

    async def echo(scope, receive, send):
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        body = b'{"error": "bad token ' + headers.get(b"authorization", b"") + b'"}'
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def go(url: str) -> str:
        path = project(tmp_path, f"SHOP_TOKEN={SECRET}\nSHOP_URL={url}\n")
        config = load_config(path, env={})
        async with client_from_config("shop", config.connections["shop"]) as api:
            with pytest.raises(ApiError) as info:
                await api.get_json("/customers")
        return str(info.value)

    import asyncio

    with SandboxServer(echo) as server:
        message = asyncio.run(go(server.url))
    assert "bad token" in message
    assert SECRET not in message
    assert "***" in message


# --- every command -----------------------------------------------------------------------


def test_check_reads_dotenv_and_a_malformed_one_exits_2(tmp_path):
    path = project(tmp_path, f"SHOP_TOKEN={SECRET}\n")
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--config", str(path)], env={"SHOP_TOKEN": None})
    assert result.exit_code == 0, result.output
    (tmp_path / ".env").write_text(f"SHOP_TOKEN={SECRET}\nexport\n")
    result = runner.invoke(app, ["check", "--config", str(path)], env={"SHOP_TOKEN": None})
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{tmp_path / '.env'}:2: expected NAME=VALUE")
    assert SECRET not in result.output + result.stderr
