"""`interlink check`: validate the config and show what it defines."""

from __future__ import annotations

import typer

from interlink.cli._options import ConfigOption, config_path

__all__ = ["register"]


def check(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Validate interlink.yaml and show the connections and database it defines.

    Every problem is printed on stderr, one line each, and the exit code is 2.
    """
    from interlink.cli import _render
    from interlink.config import load_config

    path = config_path(ctx, config)
    _render.show_config(load_config(path), file=str(path))


def register(app: typer.Typer) -> None:
    """Add the `check` command to `app`."""
    app.command("check")(check)
