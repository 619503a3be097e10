"""`interlink init`: write a commented starter `interlink.yaml`, or, with `--from URL`, one
detected from a list endpoint of the API (`interlink.connectors.detect`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from interlink.cli._inspect import ApiKeyParam, Basic, Bearer, Header, Name, credentials_of
from interlink.cli._options import ConfigOption, config_path
from interlink.errors import ConfigError

if TYPE_CHECKING:
    from interlink.connectors.detect import Credentials

__all__ = ["register"]


def _writable(path: Path, force: bool) -> str:
    file = str(path)
    if path.is_dir():
        raise ConfigError("is a directory; give a file name with --config", file=file)
    if path.exists() and not force:
        raise ConfigError("already exists; pass --force to overwrite it", file=file)
    return file


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the file: {exc.strerror or exc}", file=str(path)) from None


def _from_url(path: Path, url: str, name: str | None, credentials: Credentials) -> None:
    import asyncio

    from rich.console import Console
    from rich.text import Text

    from interlink.cli._render_inspect import show_detection, show_variables
    from interlink.connectors.detect import (
        connection_name,
        detect,
        detection_yaml,
        resource_name,
    )

    detection, secrets = asyncio.run(detect(url, credentials, name=name))
    resource = name or resource_name(url)
    text = detection_yaml(
        detection,
        secrets,
        connection=connection_name(url),
        resource=resource,
        command=f"interlink init --from {detection.url}",
    )
    _write(path, text)
    console = Console(highlight=False, width=80)
    console.print(Text(f"Wrote {path}: the {resource} resource and pipeline, into SQLite."))
    show_detection(detection, console)
    show_variables(secrets, console)
    console.print(Text("Next: `interlink check`, then `interlink run " + resource + "`."))


def init(
    ctx: typer.Context,
    config: ConfigOption = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite the file if it exists.")
    ] = False,
    from_url: Annotated[
        str | None,
        typer.Option(
            "--from", help="Detect the resource from this list URL and write it with a pipeline."
        ),
    ] = None,
    name: Name = None,
    bearer: Bearer = None,
    header: Header = None,
    api_key_param: ApiKeyParam = None,
    basic: Basic = None,
) -> None:
    """Write a starter interlink.yaml (a commented REST -> SQLite example), or with --from URL
    one detected from the API: connection, resource and pipeline, ready for `interlink run`."""
    from interlink.config import STARTER_CONFIG

    path = config_path(ctx, config)
    file = _writable(path, force)
    if from_url is not None:
        credentials = credentials_of(bearer, header, api_key_param, basic, name)
        _from_url(path, from_url, name, credentials)
        return
    if name or bearer or header or api_key_param or basic:
        raise ConfigError("--name and the auth flags go with --from URL")
    _write(path, STARTER_CONFIG)
    typer.echo(
        f"Wrote {file}. Set SHOP_URL and SHOP_TOKEN, then run `interlink check` and "
        "`interlink run customers`."
    )


def register(app: typer.Typer) -> None:
    """Add the `init` command to `app`."""
    app.command("init")(init)
