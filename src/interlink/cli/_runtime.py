"""Process-wide settings for the commands that move many records (`run`, `worker`, `serve`)."""

from __future__ import annotations

import gc

__all__ = ["tune_collector"]

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
