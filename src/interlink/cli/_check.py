"""`interlink check`: validate the config and show what it defines."""

from __future__ import annotations

import typer

from interlink.cli._options import ConfigOption, config_path, load_settings

__all__ = ["register"]


def check(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Validate interlink.yaml and list what it defines: connections, resources with their
    pagination, pipelines with destination, write mode and schedule (with its next run).

    Pipelines are compiled too (filters, field mappings, `call:` imports), as `run` would.
    Every problem is printed on stderr, one line each, and the exit code is 2.
    """
    from interlink.cli import _render_check
    from interlink.cli._validate import check_buildable

    settings = load_settings(ctx, config)
    check_buildable(settings)
    _render_check.show_config(settings, file=str(config_path(ctx, config)))


def register(app: typer.Typer) -> None:
    """Add the `check` command to `app`."""
    app.command("check")(check)
