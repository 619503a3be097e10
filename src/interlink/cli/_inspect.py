"""`interlink inspect URL`: what interlink makes of one list URL, without writing anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from interlink.connectors.detect import Credentials

__all__ = ["ApiKeyParam", "Basic", "Bearer", "Header", "Name", "credentials_of", "register"]

Bearer = Annotated[
    str | None, typer.Option("--bearer", help="A bearer token, or ${VAR} naming one.")
]
Header = Annotated[
    list[str] | None,
    typer.Option("--header", "-H", help="A header 'Name: value' sent with every request."),
]
ApiKeyParam = Annotated[
    str | None,
    typer.Option("--api-key-param", help="An API key sent as a query parameter: name=value."),
]
Basic = Annotated[str | None, typer.Option("--basic", help="HTTP basic auth: user:password.")]
Name = Annotated[
    str | None,
    typer.Option("--name", help="The resource's and pipeline's name (default: from the URL)."),
]


def credentials_of(
    bearer: str | None,
    header: list[str] | None,
    api_key_param: str | None,
    basic: str | None,
    name: str | None = None,
) -> Credentials:
    """The auth flags as `Credentials`; a ConfigError for two kinds of auth or a bad name."""
    import re

    from interlink.connectors.detect import Credentials
    from interlink.errors import ConfigError

    if name is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ConfigError(f"--name: expected letters, digits and '_'; got {name!r}")

    given = [flag for flag in (bearer, api_key_param, basic) if flag is not None]
    if len(given) > 1:
        raise ConfigError("give one of --bearer, --api-key-param and --basic (headers go along)")
    return Credentials(
        bearer=bearer, headers=tuple(header or ()), api_key_param=api_key_param, basic=basic
    )


def inspect(
    url: Annotated[str, typer.Argument(help="The URL of one list endpoint of the API.")],
    name: Name = None,
    bearer: Bearer = None,
    header: Header = None,
    api_key_param: ApiKeyParam = None,
    basic: Basic = None,
) -> None:
    """Read a few pages of URL and show what interlink detects, and the YAML it would write."""
    import asyncio

    from interlink.cli._render_inspect import show_detection
    from interlink.connectors.detect import (
        connection_name,
        detect,
        detection_yaml,
        resource_name,
    )

    credentials = credentials_of(bearer, header, api_key_param, basic, name)
    detection, secrets = asyncio.run(detect(url, credentials, name=name))
    show_detection(detection)
    typer.echo("")
    typer.echo(
        detection_yaml(
            detection,
            secrets,
            connection=connection_name(url),
            resource=name or resource_name(url),
            command=f"interlink inspect {detection.url}",
        ),
        nl=False,
    )


def register(app: typer.Typer) -> None:
    """Add the `inspect` command to `app`."""
    app.command("inspect")(inspect)
