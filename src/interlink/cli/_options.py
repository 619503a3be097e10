"""Options shared by every command, and where their values end up."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from interlink.cli._cassettes import cassette_session, check_cassette_options
from interlink.cli._run_argv import DEFAULT_CONFIG

if TYPE_CHECKING:
    from interlink.config import ConfigSource, InterlinkConfig
    from interlink.errors import InterlinkError

__all__ = [
    "DEFAULT_CONFIG",
    "ConfigOption",
    "DryRunOption",
    "FullRefreshOption",
    "RecordOption",
    "ReplayOption",
    "cassette_session",
    "check_cassette_options",
    "config_path",
    "config_source",
    "load_settings",
    "locate",
    "log_level",
    "remember_config_path",
    "remember_logging",
]

_META_KEY = "interlink.config_path"
_SOURCE_KEY = "interlink.config_source"
_LOGGING_KEY = "interlink.logging"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="The config file to use.",
        show_default="./interlink.yaml",
    ),
]


# How a pipeline run reads, for `interlink run` and `interlink jobs submit` alike.
FullRefreshOption = Annotated[
    bool, typer.Option("--full-refresh", help="Read everything again, ignore the cursor.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Read, filter and map; write nothing.")
]


RecordOption = Annotated[
    str | None,
    typer.Option(
        help="Store the HTTP exchanges in cassette NAME (cassettes/shop ->"
        " cassettes/shop.json), secrets masked, to replay offline.",
    ),
]
ReplayOption = Annotated[
    str | None,
    typer.Option(
        help="Answer every request from cassette NAME instead of the network"
        " (also INTERLINK_REPLAY=NAME).",
    ),
]


def remember_config_path(ctx: typer.Context, value: Path | None) -> None:
    """Store the `--config` given before the command name, for the command to fall back on."""
    if value is not None:
        ctx.meta[_META_KEY] = value


def remember_logging(ctx: typer.Context, verbose: int, level: str | None) -> None:
    """Store `-v` and `--log-level` for the commands that pass them on (`serve`)."""
    ctx.meta[_LOGGING_KEY] = (verbose, level)


def log_level(ctx: typer.Context, default: str) -> str:
    """The `--log-level` given, or `debug` for `-vv`, or `default`."""
    verbose, level = ctx.meta.get(_LOGGING_KEY, (0, None))
    if level is not None:
        return str(level)
    return "debug" if verbose >= 2 else default


def config_path(ctx: typer.Context, value: Path | None) -> Path:
    """Return the config file for a command.

    The command's own `--config` wins, then the one given before the command name
    (`interlink --config x.yaml check`), then `./interlink.yaml`.
    """
    if value is not None:
        return value
    remembered = ctx.meta.get(_META_KEY)
    return remembered if isinstance(remembered, Path) else DEFAULT_CONFIG


def load_settings(ctx: typer.Context, value: Path | None) -> InterlinkConfig:
    """Load the command's config file, and remember where each of its keys is written.

    A `ConfigError` raised later about a key (`database`, `pipelines.crm.filter`) then gets
    the file and line prefix every loader error has: the app's error handler calls
    `locate` before printing it.
    """
    from interlink.config import load_config_source

    settings, source = load_config_source(config_path(ctx, value))
    ctx.meta[_SOURCE_KEY] = source
    return settings


def config_source(ctx: typer.Context) -> ConfigSource | None:
    """Where the loaded config's keys are written; None before `load_settings` ran."""
    from interlink.config import ConfigSource

    source = ctx.meta.get(_SOURCE_KEY)
    return source if isinstance(source, ConfigSource) else None


def locate(ctx: typer.Context, error: InterlinkError) -> InterlinkError:
    """`error` pointed at its file and line when it is a ConfigError about a key of the
    config the command loaded; any other error as it is."""
    from interlink.errors import ConfigError

    # Only a command that loaded a config has imported interlink.config: check first.
    source = config_source(ctx) if _SOURCE_KEY in ctx.meta else None
    if source is None or not isinstance(error, ConfigError):
        return error
    return source.locate(error)
