"""The console script's own reading of `interlink run` (`cli._run_argv`) against Typer's.

Whatever the direct reader accepts, Typer must accept too and hand the `run` command the
very same values; whatever Typer refuses, the direct reader must leave to Typer (None), so
that Typer prints its usage error. Checked on the forms people write and on thousands of
command lines drawn from a vocabulary of the tricky tokens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import random
from pathlib import Path
from typing import Any

import pytest
import typer

import interlink.cli.main as cli_main
from interlink.cli import _run_command
from interlink.cli._run_argv import DEFAULT_CONFIG, RUN_OPTIONS, RunArgv, parse_run_argv


class _Captured(Exception):
    pass


@pytest.fixture(scope="module")
def typer_reads() -> Any:
    """Read a command line with the Typer app; the RunArgv its `run` command would run,
    or None when Typer refuses it (or it is not a run)."""
    command = typer.main.get_command(cli_main.app)
    seen: dict[str, Any] = {}

    def capture(argv: RunArgv, load: Any) -> None:
        seen["argv"] = argv
        raise _Captured

    def logging(verbose: int, level: str | None, name: str | None) -> None:
        seen["logging"] = (verbose, level)

    patch = pytest.MonkeyPatch()
    patch.setattr(_run_command, "run_command", capture)
    patch.setattr(cli_main, "configure_logging", logging)

    def read(args: list[str]) -> RunArgv | None:
        seen.clear()
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                command.main(list(args), prog_name="interlink", standalone_mode=False)
            except _Captured:
                verbose, level = seen["logging"]
                argv: RunArgv = seen["argv"]
                return dataclasses.replace(argv, verbose=verbose, log_level=level)
            except (Exception, SystemExit):
                return None
        return None

    yield read
    patch.undo()


COMMON = [
    (["run", "crm"], RunArgv("crm")),
    (["run", "crm", "--config", "a.yaml"], RunArgv("crm", config=Path("a.yaml"))),
    (["run", "crm", "-c", "a.yaml"], RunArgv("crm", config=Path("a.yaml"))),
    (["run", "--config=a.yaml", "crm"], RunArgv("crm", config=Path("a.yaml"))),
    (["--config", "b.yaml", "run", "crm"], RunArgv("crm", config=Path("b.yaml"))),
    (["-c", "b.yaml", "run", "crm", "-c", "a.yaml"], RunArgv("crm", config=Path("a.yaml"))),
    (["-v", "run", "crm"], RunArgv("crm", verbose=1)),
    (["run", "crm", "-vv"], RunArgv("crm", verbose=2)),
    (["run", "crm", "-v", "--verbose"], RunArgv("crm", verbose=2)),
    (["run", "crm", "--log-level", "INFO"], RunArgv("crm", log_level="info")),
    (["--log-level=debug", "run", "crm"], RunArgv("crm", log_level="debug")),
    (["run", "crm", "--full-refresh"], RunArgv("crm", full_refresh=True)),
    (["run", "crm", "--dry-run", "--limit", "50"], RunArgv("crm", dry_run=True, limit=50)),
    (["run", "crm", "--limit=7"], RunArgv("crm", limit=7)),
    (["run", "crm", "--id", "7", "--id=8"], RunArgv("crm", ids=("7", "8"))),
    (["run", "crm", "--account", "*"], RunArgv("crm", account="*")),
    (["run", "crm", "--account=acme"], RunArgv("crm", account="acme")),
    (["run", "crm", "--record", "shop"], RunArgv("crm", record="shop")),
    (["run", "crm", "--replay", "shop"], RunArgv("crm", replay="shop")),
    (["run", "run"], RunArgv("run")),
]


@pytest.mark.parametrize(("args", "expected"), COMMON, ids=[" ".join(a) for a, _ in COMMON])
def test_the_forms_people_write_are_read_directly_as_typer_reads_them(
    typer_reads: Any, args: list[str], expected: RunArgv
) -> None:
    assert parse_run_argv(args) == expected
    assert typer_reads(args) == expected


LEFT_TO_TYPER = [
    ["run", "crm", "--help"],
    ["run", "--help"],
    ["--version", "run", "crm"],
    ["runs", "crm"],
    ["check"],
    ["run"],
    ["run", "crm", "extra"],
    ["run", "crm", "--limit", "0"],
    ["run", "crm", "--limit", "-1"],
    ["run", "crm", "--limit", "ten"],
    ["run", "crm", "--limit", "1", "--limit", "2"],
    ["run", "crm", "--log-level", "loud"],
    ["run", "crm", "--config"],
    ["run", "crm", "-ca.yaml"],
    ["run", "crm", "--unknown"],
    ["run", "crm", "--dry-run=yes"],
    ["run", "--", "crm"],
    ["run", "-"],
    ["--config", "a.yaml", "--dry-run", "run", "crm"],
]


@pytest.mark.parametrize("args", LEFT_TO_TYPER, ids=[" ".join(a) for a in LEFT_TO_TYPER])
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert parse_run_argv(args) is None


def test_a_shell_completion_request_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_INTERLINK_COMPLETE", "bash_complete")
    assert parse_run_argv(["run", "crm"]) is None


def test_windows_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typer expands wildcards in the arguments there (`--account *`)."""
    assert parse_run_argv(["run", "crm", "--account", "*"]) is not None
    monkeypatch.setattr("interlink.cli._run_argv.os.name", "nt")
    assert parse_run_argv(["run", "crm", "--account", "*"]) is None


VOCABULARY = [
    "run", "run", "run", "crm", "crm", "other", "runs", "check", "-v", "-vv", "--verbose",
    "--log-level", "info", "DEBUG", "loud", "--log-level=error", "--config", "-c", "a.yaml",
    "--config=b.yaml", "-cb.yaml", "--full-refresh", "--dry-run", "--limit", "5", "0",
    "007", "-3", "1e3", "--limit=10", "--id", "7", "--id=8", "--account", "acme", "*",
    "--account=", "--record", "--replay", "cas", "--", "-", "--help", "-h", "--version",
    "--unknown", "", " ", "-x", "--dry-run=1", "-vx", "--confi", "-vc",
]  # fmt: skip


def test_drawn_command_lines_are_read_the_same_or_left_to_typer(typer_reads: Any) -> None:
    draw = random.Random(15)
    direct = agreed = refused = 0
    for _ in range(6000):
        args = ["run", "crm"] if draw.random() < 0.5 else []
        for _ in range(draw.randint(0, 6)):
            args.insert(draw.randint(0, len(args)), draw.choice(VOCABULARY))
        ours = parse_run_argv(args)
        theirs = typer_reads(args)
        if ours is None:
            refused += theirs is None
            continue
        direct += 1
        assert theirs is not None, f"Typer refuses {args}, the direct reader took {ours}"
        assert ours == theirs, args
        agreed += 1
    # The drawing reaches both sides: many lines read directly, many refused by both.
    assert direct > 400 and refused > 400, (direct, refused)
    assert agreed == direct


def test_the_direct_reader_knows_every_option_of_run() -> None:
    command = typer.main.get_command(cli_main.app)
    run = command.commands["run"]  # type: ignore[attr-defined]
    names = {name for param in run.params for name in (*param.opts, *param.secondary_opts)}
    assert names - {"--help", "pipeline"} == RUN_OPTIONS


def test_the_default_config_is_the_one_typer_falls_back_on(typer_reads: Any) -> None:
    assert parse_run_argv(["run", "crm"]) == RunArgv("crm", config=DEFAULT_CONFIG)
    assert typer_reads(["run", "crm"]) == RunArgv("crm", config=DEFAULT_CONFIG)
