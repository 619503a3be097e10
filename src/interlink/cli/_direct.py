"""`interlink run` straight from the console script, without building the Typer app.

`interlink.__main__` reads the command line with `cli._run_argv.parse_run_argv`; when it
is a `run` that reader is sure of, `run_direct` does what the Typer app would around
`cli._run_command.run_command`: set up logging from `-v` and `--log-level`, print an
InterlinkError as its lines (a config error with its file and line) and exit with its
code, exit 130 on a Ctrl-C that came before the run's own handler, and exit 1 quietly
when the reader of stdout went away. Everything else goes to Typer.
"""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from interlink.cli._error_lines import error_lines
from interlink.cli._logging import configure_logging
from interlink.cli._run_argv import RunArgv
from interlink.errors import InterlinkError

if TYPE_CHECKING:
    from interlink.config import ConfigSource, InterlinkConfig

__all__ = ["run_direct"]

_CTRL_C_EXIT = 130


def run_direct(argv: RunArgv) -> NoReturn:
    """Run the pipeline `argv` names and exit with the run's exit code."""
    from interlink.cli._run_command import run_command

    configure_logging(argv.verbose, argv.log_level, "run")
    sources: list[ConfigSource] = []

    def load(path: Path) -> InterlinkConfig:
        from interlink.config import load_config_source

        settings, source = load_config_source(path)
        sources.append(source)
        return settings

    code = 0
    try:
        try:
            run_command(argv, load)
        except InterlinkError as error:
            _print_error(error, sources)
            code = error.exit_code
    except KeyboardInterrupt:
        code = _CTRL_C_EXIT
    except OSError as error:
        if error.errno != errno.EPIPE:
            raise
        _pacify_streams()
        code = 1
    sys.exit(code)


_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")
"""Terminal escapes, taken out of a line written to anything but a terminal (as click's
`echo` does on the Typer path: an API's message may carry them)."""


def _print_error(error: InterlinkError, sources: list[ConfigSource]) -> None:
    from interlink.errors import ConfigError

    if sources and isinstance(error, ConfigError):
        error = sources[-1].locate(error)
    plain = not sys.stderr.isatty()
    for line in error_lines(error):
        print(_ANSI.sub("", line) if plain else line, file=sys.stderr)


class _Quiet:
    """A stream whose flush after a broken pipe is not an error (what click does there)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            if error.errno != errno.EPIPE:
                raise


def _pacify_streams() -> None:
    sys.stdout = _Quiet(sys.stdout)
    sys.stderr = _Quiet(sys.stderr)
