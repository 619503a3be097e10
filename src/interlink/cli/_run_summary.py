"""What the summary of one run says, and that summary as plain text without rich.

`run_summary` decides the content: the title, the counts and the lines under the table.
`cli/_render.show_run` draws it with rich. Written to a file or a pipe (cron, a scheduler,
CI, a benchmark), rich draws it as plain text, and `plain_text` writes the very same
characters without importing rich (rich and its console cost a run about 30 ms, a tenth
of a run that finds nothing new). `plain_text` answers None for anything it does not lay
out exactly as rich would (a line wider than the output, text that is not plain ASCII, a
table wider than the output); the caller then draws it with rich.
tests/cli/test_run_summary.py holds the two to the same output.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NamedTuple, TextIO

if TYPE_CHECKING:
    from interlink.sync import RunResult

__all__ = ["COLUMNS", "RunSummary", "output_width", "plain_output", "plain_text", "run_summary"]

COLUMNS = ("read", "created", "updated", "unchanged", "deleted", "skipped", "failed")
"""The counts in the summary's table, in order."""

_WIDTH = 80
"""How wide rich lays out text when no terminal and no COLUMNS say otherwise."""

_SHOWN = 10
"""Warnings and failed records listed under the table; the rest are counted."""

_RICH_SETTINGS = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS")
"""Environment variables under which rich may write to a file or a pipe other than as
plain text (as to a terminal, or as in a notebook): any of them set, rich writes."""


class RunSummary(NamedTuple):
    """The summary of one run: a title, one row of counts, then lines of text, each with
    the style rich gives it on a terminal ("" for none)."""

    title: str
    counts: tuple[str, ...]
    failed: bool
    lines: tuple[tuple[str, str], ...]


def run_summary(result: RunResult) -> RunSummary:
    """The summary `interlink run` prints after a run."""
    counts = result.counts
    title = f"run {result.run_id} of {result.pipeline}: {result.status}"
    if result.account:
        title = f"run {result.run_id} of {result.pipeline} for {result.account}: {result.status}"
    if result.dry_run:
        title += " (dry run)"
    if result.resumed:
        title += " (resumed an interrupted read)"
    if result.trial:
        title += " (trial)"
    if result.ids is not None:
        title += " (by id)"
    lines: list[tuple[str, str]] = []
    if result.ids is not None:
        lines.append(
            (
                f"{counts['read']:,} of {len(result.ids):,} records fetched by id in "
                f"{result.elapsed:.2f} s",
                "",
            )
        )
    else:
        rate = counts["read"] / result.elapsed if result.elapsed > 0 else 0.0
        lines.append(
            (f"{counts['pages']:,} pages in {result.elapsed:.2f} s ({rate:,.0f} records/s)", "")
        )
    if result.trial:
        lines.append(
            (
                f"Trial: wrote to {result.wrote_to}; the cursor and checkpoint were left as "
                "they were and nothing was deleted.",
                "yellow",
            )
        )
    lines.extend((f"warning: {warning}", "yellow") for warning in result.warnings[:_SHOWN])
    if result.dry_run:
        lines.append((f"{result.would_write:,} records would be written.", ""))
    lines.extend(
        (f"  record {error['key']} ({error['step']}): {error['error']}", "red")
        for error in result.errors[:_SHOWN]
    )
    listed = len(result.errors[:_SHOWN])
    if counts["failed"] > listed:
        lines.append((f"  ... {counts['failed'] - listed:,} more failed records", ""))
    if result.message:
        why = "why" if result.status != "succeeded" else "note"
        lines.append((f"{why}: {result.message}", "red"))
    return RunSummary(
        title=title,
        counts=tuple(f"{counts.get(column, 0):,}" for column in COLUMNS),
        failed=bool(counts["failed"]),
        lines=tuple(lines),
    )


def plain_output(stream: TextIO) -> bool:
    """Whether rich would write to `stream` as plain UTF-8 text (at `output_width`): not a
    terminal, not a notebook, and nothing in the environment that says otherwise."""
    if sys.platform == "win32" or any(name in os.environ for name in _RICH_SETTINGS):
        return False
    if "ipykernel" in sys.modules:  # rich writes through the notebook's display
        return False
    try:
        if stream.isatty():
            return False
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return encoding.lower().startswith("utf")


def output_width() -> int:
    """How wide rich lays out what it writes to a file or a pipe: COLUMNS when it is a
    number (0 too: rich then writes nothing wider than nothing), else the width of a
    terminal on standard input, output or error (in that order), else 80."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    width = 0
    for descriptor in (0, 1, 2):
        try:
            width = os.get_terminal_size(descriptor).columns
        except (AttributeError, ValueError, OSError):  # not a terminal
            continue
        break
    return width or _WIDTH


def plain_text(summary: RunSummary, width: int = _WIDTH) -> str | None:
    """The summary as rich writes it to a file or a pipe `width` columns wide, or None
    when rich would lay it out in a way this does not (wrap a line, squeeze the table)."""
    pairs = zip(COLUMNS, summary.counts, strict=True)
    cells = [max(len(name), len(count)) for name, count in pairs]
    table_width = sum(cells) + 3 * len(cells) + 1
    texts = [summary.title, *summary.counts, *(text for text, _ in summary.lines)]
    if table_width > width or len(summary.title) > table_width:
        return None
    if any(not (text.isascii() and text.isprintable()) for text in texts):
        return None
    if any(len(text) > width or text != text.rstrip() for text, _ in summary.lines):
        return None

    def rule(left: str, line: str, cross: str, right: str) -> str:
        return left + cross.join(line * (cell + 2) for cell in cells) + right

    def row(edge: str, values: tuple[str, ...]) -> str:
        inner = edge.join(f" {value:>{cell}} " for value, cell in zip(values, cells, strict=True))
        return f"{edge}{inner}{edge}"

    out = [
        summary.title.ljust(table_width),
        rule("┏", "━", "┳", "┓"),
        row("┃", COLUMNS),
        rule("┡", "━", "╇", "┩"),
        row("│", summary.counts),
        rule("└", "─", "┴", "┘"),
        *(text for text, _ in summary.lines),
    ]
    return "\n".join(out) + "\n"
