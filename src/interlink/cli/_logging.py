"""Where interlink's log lines go on the command line: `-v`, `-vv` and `--log-level`.

Every command takes them, before or after its name (`interlink -v run crm` and
`interlink run crm -v` are the same: `hoist_global_options` moves them in front).

- `-v`: one line per HTTP request (method, URL with secrets masked, status, time, attempt,
  rate-limit wait), and interlink's INFO lines.
- `-vv`: that, each request's and response's headers (credentials masked), and every
  DEBUG line.
- `--log-level LEVEL`: interlink's level (debug, info, warning, error); `serve` gives it to
  uvicorn too.

`interlink worker` and `interlink serve` log at INFO without being asked (one line per job
started and finished); the other commands print only what they print unless asked.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LEVELS", "configure_logging", "hoist_global_options", "level_name"]

LEVELS = ("debug", "info", "warning", "error")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SERVICES = frozenset({"worker", "serve"})
"""Commands that log at INFO without `-v`: they run unattended, and their log is their output."""


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is logged, so that a live progress
    display (which swaps `sys.stderr` for a proxy while it runs) prints the line above
    itself instead of through it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter(_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_installed: _StderrHandler | None = None
_before: dict[str, int] = {}
"""The levels of the loggers `configure_logging` set, as they were before it first did."""


def level_name(verbose: int, level: str | None, command: str | None) -> str | None:
    """interlink's log level for a command: the given `--log-level`, else DEBUG for `-v`
    and more (the requests are DEBUG lines), INFO for `worker` and `serve`, else None
    (left alone)."""
    if level is not None:
        return level
    if verbose:
        return "debug"
    return "info" if command in _SERVICES else None


def configure_logging(verbose: int, level: str | None, command: str | None) -> None:
    """Send interlink's log to stderr at the level the options ask for (`level_name`).

    `-v` without `-vv` keeps the headers' logger (`interlink.http.headers`) quiet and the
    rest of interlink at INFO; `--log-level` alone sets every interlink logger to it. Called
    once per command; a second call (tests run many commands in one process) replaces what
    the first installed.
    """
    global _installed
    _restore()
    name = level_name(verbose, level, command)
    if name is None:
        return
    settings: dict[str, int] = {"interlink": getattr(logging, name.upper())}
    if verbose == 1:
        settings["interlink.http"] = logging.DEBUG
        settings["interlink.http.headers"] = logging.INFO
        if level is None:
            settings["interlink"] = logging.INFO
    elif verbose >= 2:
        settings["interlink.http"] = logging.DEBUG
        settings["interlink.http.headers"] = logging.DEBUG
    for logger_name, value in settings.items():
        logger = logging.getLogger(logger_name)
        _before.setdefault(logger_name, logger.level)
        logger.setLevel(value)
    _installed = _StderrHandler()
    logging.getLogger("interlink").addHandler(_installed)


def _restore() -> None:
    """Take out what an earlier `configure_logging` installed."""
    global _installed
    if _installed is not None:
        logging.getLogger("interlink").removeHandler(_installed)
        _installed = None
    for logger_name, value in _before.items():
        logging.getLogger(logger_name).setLevel(value)
    _before.clear()


_FLAGS = frozenset({"--verbose"})
_VALUED = "--log-level"


def _is_global(token: str) -> bool:
    if token in _FLAGS or token.startswith(_VALUED + "="):
        return True
    return len(token) >= 2 and token[0] == "-" and set(token[1:]) == {"v"}


def hoist_global_options(args: list[str]) -> list[str]:
    """`args` with `-v`, `-vv`, `--verbose` and `--log-level LEVEL` moved in front, from
    wherever they were written (up to a `--`), so that the app's own options take them.

    ```python
    hoist_global_options(["run", "crm", "-v", "--log-level", "info"])
    # ['-v', '--log-level', 'info', 'run', 'crm']
    ```
    """
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--":
            rest.extend(args[index:])
            break
        if _is_global(token):
            front.append(token)
        elif token == _VALUED and index + 1 < len(args):
            front.extend(args[index : index + 2])
            index += 1
        elif token == _VALUED:
            # Written last, without its level: an empty one, which the option refuses with
            # the levels it takes (left where it was, the command would call it unknown).
            front.append(_VALUED + "=")
        else:
            rest.append(token)
        index += 1
    return front + rest
