"""The `interlink` Typer application.

Each command group lives in its own module with a `register(app)` function; this module
only builds the app, adds the global options and turns `InterlinkError`s into one line on
stderr and the error's exit code. It stays cheap to import: commands import the config
loader, rich and anything heavier inside their functions.
"""

from __future__ import annotations

import gc
import inspect
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from interlink.cli import (
    _apikeys,
    _bindings,
    _check,
    _conflicts,
    _connect,
    _connections,
    _db,
    _demo,
    _failed,
    _init,
    _inspect,
    _jobs,
    _metrics,
    _read,
    _run,
    _sandbox,
    _secrets,
    _serve,
    _webhooks,
    _worker,
)
from interlink.cli._error_lines import error_lines
from interlink.cli._logging import LEVELS, configure_logging, hoist_global_options
from interlink.cli._options import ConfigOption, locate, remember_config_path, remember_logging
from interlink.errors import InterlinkError

__all__ = ["app", "main"]


class _InterlinkGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # `-v` and `--log-level` belong to the app but may follow the command's name.
        return super().parse_args(ctx, hoist_global_options(list(args)))

    # `ctx` is Typer's vendored click Context, which it does not export under a public name.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except InterlinkError as error:
            # A ConfigError about a key of the loaded config gets its file and line.
            for line in error_lines(locate(ctx, error)):
                typer.echo(line, err=True)
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    name="interlink",
    cls=_InterlinkGroup,
    help="Connect HTTP APIs and keep their data in step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        from interlink._version import __version__

        typer.echo(f"interlink {__version__}")
        raise typer.Exit()


def _log_level(value: str | None) -> str | None:
    if value is None or value.lower() in LEVELS:
        return None if value is None else value.lower()
    raise typer.BadParameter(f"expected one of {', '.join(LEVELS)}; got {value!r}")


@app.callback()
def _root(
    ctx: typer.Context,
    config: ConfigOption = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Log every request to the APIs on stderr (credentials masked); -vv adds "
            "their headers. Before or after the command's name.",
        ),
    ] = 0,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            callback=_log_level,
            help="interlink's log level on stderr: debug, info, warning or error "
            "(worker and serve: info; serve gives it to uvicorn too).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    if ctx.invoked_subcommand != "run":
        gc.enable()  # held off while the process started (interlink.__main__)
    remember_config_path(ctx, config)
    remember_logging(ctx, verbose, log_level)
    configure_logging(verbose, log_level, ctx.invoked_subcommand)


_check.register(app)
_init.register(app)
_inspect.register(app)
_demo.register(app)
_read.register(app)
_run.register(app)
_conflicts.register(app)
_bindings.register(app)
_failed.register(app)
_sandbox.register(app)
_worker.register(app)
_jobs.register(app)
_serve.register(app)
_apikeys.register(app)
_webhooks.register(app)
_db.register(app)
_secrets.register(app)
_connections.register(app)
_connect.register(app)
_metrics.register(app)


def _one_line_summaries(typer_app: typer.Typer) -> None:
    """Each command's summary in `--help` is its docstring's first paragraph on one line:
    rich keeps the docstring's line breaks, which cut the summary mid-sentence."""
    for info in typer_app.registered_commands:
        doc = info.callback.__doc__ if info.callback is not None else None
        if info.short_help is None and info.help is None and doc:
            info.short_help = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


_one_line_summaries(app)


def main() -> None:
    """Run the Typer app on the process's command line. The `interlink` console script
    starts at `interlink.__main__.main`, which comes here for every command line but a
    plain `run` (and first keeps httpx's own command line from loading)."""
    app(prog_name="interlink")
