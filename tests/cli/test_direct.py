"""`interlink run` through the console script's direct path (`cli._direct`) ends as it does
through the Typer app: the same lines on stderr, the same exit code, for every way a run
is refused or fails. Each case runs as two real processes, one per entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from interlink.sandbox import SandboxServer, create_shop_app
from tests.cli.test_run_imports import _write_config

CONSOLE_SCRIPT = "from interlink.__main__ import main; main()"
TYPER_APP = "from interlink.cli.main import main; main()"


def _both(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], ...]:
    done = []
    for entry in (CONSOLE_SCRIPT, TYPER_APP):
        done.append(
            subprocess.run(
                [sys.executable, "-c", entry, *args],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=cwd,
                env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
            )
        )
    return tuple(done)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["run", "nope"], 2, "interlink.yaml:"),  # a config error, with its file and line
        (["run", "customers", "--config", "missing.yaml"], 2, "missing.yaml: no such file"),
        (["run", "customers", "--id", "1", "--limit", "5"], 2, "--id cannot be combined"),
        (["run", "customers", "--record", "a", "--replay", "b"], 2, "--record and --replay"),
    ],
)
def test_a_refused_run_says_the_same_either_way(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    _write_config(tmp_path, "http://127.0.0.1:9")
    direct, typer = _both(*args, cwd=tmp_path)
    assert (direct.returncode, direct.stderr) == (typer.returncode, typer.stderr)
    assert direct.returncode == code, direct.stderr
    assert says in direct.stderr, direct.stderr
    assert "Traceback" not in direct.stderr


def test_a_failed_run_exits_1_either_way(tmp_path: Path) -> None:
    _write_config(tmp_path, "http://127.0.0.1:9")  # nothing listens there
    direct, typer = _both("run", "customers", cwd=tmp_path)
    assert direct.returncode == typer.returncode == 1, direct.stderr
    said = direct.stderr.splitlines()[-1]
    assert said == typer.stderr.splitlines()[-1]
    assert "cannot connect to 127.0.0.1:9" in said and "connections.shop.base_url" in said
    assert "Traceback" not in direct.stderr + typer.stderr


def test_a_run_writes_the_same_either_way(tmp_path: Path) -> None:
    with SandboxServer(create_shop_app(records=30)) as shop:
        _write_config(tmp_path, shop.url)
        direct, typer = _both("run", "customers", "-v", cwd=tmp_path)
    assert direct.returncode == typer.returncode == 0, direct.stderr + typer.stderr
    # -v after the command's name: one log line per request, on both paths.
    assert direct.stderr.count("GET ") == typer.stderr.count("GET ") >= 3, direct.stderr
    assert "succeeded" in direct.stdout and "succeeded" in typer.stdout


@pytest.mark.parametrize("terminal", [False, True])
def test_terminal_escapes_in_an_error_are_dropped_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], terminal: bool
) -> None:
    """As click's `echo` does on the Typer path: an API's message may carry them."""
    from interlink.cli import _direct
    from interlink.errors import ApiError

    monkeypatch.setattr("sys.stderr.isatty", lambda: terminal)
    _direct._print_error(ApiError("the API said \033[31mno\033[0m"), [])
    said = capsys.readouterr().err
    assert said.endswith("the API said \033[31mno\033[0m\n" if terminal else "the API said no\n")
