"""`interlink init`: write a commented starter `interlink.yaml`."""

from __future__ import annotations

from typing import Annotated

import typer

from interlink.cli._options import ConfigOption, config_path
from interlink.errors import ConfigError

__all__ = ["register"]


def init(
    ctx: typer.Context,
    config: ConfigOption = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite the file if it exists.")
    ] = False,
) -> None:
    """Write a starter interlink.yaml with one example connection, ready for `interlink check`."""
    from interlink.config import STARTER_CONFIG

    path = config_path(ctx, config)
    file = str(path)
    if path.is_dir():
        raise ConfigError("is a directory; give a file name with --config", file=file)
    if path.exists() and not force:
        raise ConfigError("already exists; pass --force to overwrite it", file=file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(STARTER_CONFIG, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the file: {exc.strerror or exc}", file=file) from None
    typer.echo(f"Wrote {file}. Set SHOP_URL and SHOP_TOKEN, then run `interlink check`.")


def register(app: typer.Typer) -> None:
    """Add the `init` command to `app`."""
    app.command("init")(init)
