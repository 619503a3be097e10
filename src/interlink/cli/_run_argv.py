"""The command line of `interlink run`, read without Typer, for the console script's
direct path (`interlink.cli._direct`).

Typer builds every command's parameters, with a pydantic adapter per option, before it
runs any: about 80 ms of every `interlink run`, a scheduled run that finds nothing new
included (issue 15, docs/benchmarks.md "Start-up"). `parse_run_argv` reads the forms of a
`run` command line people write, exactly as Typer reads them, and gives up (None) on
anything else: `--help`, an unknown or repeated option, a missing or doubtful value, a
value Typer would refuse. The console script then hands the whole command line to Typer,
so every error message and every rarer form stays Typer's own. tests/cli/test_run_argv.py
holds the two readers to the same answers, and to the same options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from interlink.cli._logging import LEVELS, hoist_global_options

__all__ = ["RUN_OPTIONS", "RunArgv", "parse_run_argv"]

DEFAULT_CONFIG = Path("interlink.yaml")

_FLAGS = {"--full-refresh": "full_refresh", "--dry-run": "dry_run"}
_VALUED = {
    "--config": "config",
    "-c": "config",
    "--limit": "limit",
    "--id": "ids",
    "--account": "account",
    "--record": "record",
    "--replay": "replay",
}
RUN_OPTIONS = frozenset(_FLAGS) | frozenset(_VALUED)
"""Every option name of `interlink run` this reader knows (a test compares it with the
command's)."""

_LIMIT_DIGITS = 18
_COMPLETION_VARIABLE = "_INTERLINK_COMPLETE"


@dataclass(frozen=True)
class RunArgv:
    """What an `interlink run` command line asks for, as the `run` command receives it:
    `config` is the file to load (the command's `--config`, else the one before the
    command's name, else ./interlink.yaml)."""

    pipeline: str
    config: Path = DEFAULT_CONFIG
    full_refresh: bool = False
    dry_run: bool = False
    limit: int | None = None
    ids: tuple[str, ...] = ()
    account: str | None = None
    record: str | None = None
    replay: str | None = None
    verbose: int = 0
    log_level: str | None = None


def parse_run_argv(args: list[str]) -> RunArgv | None:
    """`args` (the command line after the program's name) read as `interlink run`, or None
    when it is another command or anything this reader leaves to Typer."""
    # On Windows Typer expands wildcards in the arguments (`--account *`): its job there.
    if "run" not in args or _COMPLETION_VARIABLE in os.environ or os.name == "nt":
        return None
    tokens = hoist_global_options(list(args))
    verbose, log_level, index = _global_options(tokens)
    if index is None:
        return None
    root = _root_config(tokens, index)
    if root is None:
        return None
    config, index = root
    if index >= len(tokens) or tokens[index] != "run":
        return None
    fields = _run_options(tokens[index + 1 :])
    if fields is None:
        return None
    fields.setdefault("config", config or DEFAULT_CONFIG)
    return RunArgv(verbose=verbose, log_level=log_level, **fields)  # type: ignore[arg-type]


def _global_options(tokens: list[str]) -> tuple[int, str | None, int | None]:
    """`-v` and `--log-level` at the front (hoisted there) and the index after them; the
    index is None when a level is one the app refuses or is given twice."""
    verbose = 0
    level: str | None = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--verbose":
            verbose += 1
        elif len(token) >= 2 and token[0] == "-" and set(token[1:]) == {"v"}:
            verbose += len(token) - 1
        elif token == "--log-level" or token.startswith("--log-level="):
            if level is not None:
                return verbose, None, None
            if token == "--log-level":
                index += 1
                if index >= len(tokens):
                    return verbose, None, None
                value = tokens[index]
            else:
                value = token.partition("=")[2]
            if value.lower() not in LEVELS:
                return verbose, None, None
            level = value.lower()
        else:
            break
        index += 1
    return verbose, level, index


def _root_config(tokens: list[str], index: int) -> tuple[Path | None, int] | None:
    """The `--config` written before the command's name, if any, and the index of the
    command's name; None for any other option there, or a doubtful value."""
    config: Path | None = None
    while index < len(tokens) and tokens[index].startswith("-"):
        name, equals, value = tokens[index].partition("=")
        if name not in ("--config", "-c") or (equals and name == "-c") or config is not None:
            return None
        if not equals:
            index += 1
            if index >= len(tokens):
                return None
            value = tokens[index]
        if not value or value.startswith("-"):
            return None
        config = Path(value)
        index += 1
    return config, index


def _run_options(tokens: list[str]) -> dict[str, object] | None:
    fields = _options(tokens, allowed=_VALUED, flags=_FLAGS)
    if fields is None:
        return None
    positional = fields.pop("_positional", ())
    if not isinstance(positional, tuple) or len(positional) != 1:
        return None
    fields["pipeline"] = positional[0]
    return fields


def _options(
    tokens: list[str], *, allowed: dict[str, str], flags: dict[str, str]
) -> dict[str, object] | None:
    """Options and positional arguments, or None at the first thing not certain."""
    fields: dict[str, object] = {}
    positional: list[str] = []
    ids: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.startswith("-"):
            positional.append(token)
            continue
        if token in flags:
            if flags[token] in fields:
                return None
            fields[flags[token]] = True
            continue
        name, equals, value = token.partition("=")
        if name not in allowed or (equals and not name.startswith("--")):
            return None
        if not equals:
            if index >= len(tokens):
                return None
            value = tokens[index]
            index += 1
        if not value or value.startswith("-"):
            return None
        field = allowed[name]
        if field == "ids":
            ids.append(value)
            continue
        if field in fields:
            return None
        parsed = _value(field, value)
        if parsed is None:
            return None
        fields[field] = parsed
    if ids:
        fields["ids"] = tuple(ids)
    if positional:
        fields["_positional"] = tuple(positional)
    return fields


def _value(field: str, value: str) -> object | None:
    if field == "config":
        return Path(value)
    if field == "limit":
        # Plain decimal digits, at least 1: what any integer parser reads the same way.
        if not value.isascii() or not value.isdigit() or len(value) > _LIMIT_DIGITS:
            return None
        number = int(value)
        return number if number >= 1 else None
    return value
