"""Options shared by every command, and where their values end up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "DEFAULT_CONFIG",
    "ConfigOption",
    "DryRunOption",
    "FullRefreshOption",
    "config_path",
    "remember_config_path",
]

DEFAULT_CONFIG = Path("interlink.yaml")

_META_KEY = "interlink.config_path"

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


def remember_config_path(ctx: typer.Context, value: Path | None) -> None:
    """Store the `--config` given before the command name, for the command to fall back on."""
    if value is not None:
        ctx.meta[_META_KEY] = value


def config_path(ctx: typer.Context, value: Path | None) -> Path:
    """Return the config file for a command.

    The command's own `--config` wins, then the one given before the command name
    (`interlink --config x.yaml check`), then `./interlink.yaml`.
    """
    if value is not None:
        return value
    remembered = ctx.meta.get(_META_KEY)
    return remembered if isinstance(remembered, Path) else DEFAULT_CONFIG
