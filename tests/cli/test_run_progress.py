"""`interlink run`'s live bar: drawn on a terminal, left out when stderr is a file or a
pipe (the summary that follows carries the same counts)."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace
from typing import Any

from interlink.cli._render_progress import RunProgress


def _result(read: int, pages: int, failed: int = 0) -> Any:
    return SimpleNamespace(
        counts={"read": read, "pages": pages, "failed": failed},
        started=time.perf_counter() - 1.0,
    )


def _drawn(terminal: bool) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=terminal, width=100)
    with RunProgress("customers", console) as bar:
        bar.update(_result(1_000, 1))
        bar.update(_result(2_500, 3, failed=2))
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def test_a_terminal_gets_the_live_bar() -> None:
    out = _drawn(terminal=True)
    assert "customers" in out
    assert "2,500 records" in out
    assert "3 pages" in out
    assert "2 failed" in out


def test_a_file_or_a_pipe_gets_nothing() -> None:
    assert _drawn(terminal=False) == ""
