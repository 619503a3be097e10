"""Process-wide settings for the commands that move many records (`run`, `worker`, `serve`)."""

from __future__ import annotations

import gc
import sys

__all__ = ["skip_httpx_command_line", "tune_collector"]

_TUNED = False


def tune_collector() -> None:
    """Keep the cyclic garbage collector off interlink's own start-up objects.

    A sync parses thousands of short-lived dicts per page, so the collector runs often; its
    full collections then walk every object the imports left behind (a few hundred
    thousand: pydantic models, SQLAlchemy, aiohttp), 70-85 ms each, six or more per 100,000
    records. `gc.freeze()` moves what exists now out of the collector's sight (it is
    never garbage: modules, classes, config), and a larger first threshold lets young
    objects die by reference counting before a collection looks at them. Reference
    counting still frees everything at once; only cycles wait a little longer.

    The console script starts with the collector off (`interlink.__main__`); this turns
    it on, whoever started the process.
    """
    global _TUNED
    if _TUNED:
        return
    _TUNED = True
    # No collection first: it costs 30-35 ms of every run, and what it would free is a
    # few start-up objects that then stay in the frozen set.
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
    gc.enable()


def skip_httpx_command_line() -> None:
    """Keep `import httpx` from importing httpx's own command-line client.

    httpx imports it (click, rich.syntax and pygments, ~30 ms of every interlink process)
    whenever those are installed, as they are beside typer and rich. The interlink command
    never runs it: with this, `import httpx` finds no `httpx._main` and binds its stub
    `httpx.main`. Only in the `interlink` process (the command line's entry points call
    this), never in a program that imports interlink as a library.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
