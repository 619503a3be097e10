"""How `interlink failed ...` draws the records pipelines owe their destinations, with
rich, in 80 columns.

Imported inside the command functions only. Keys and errors come from the source and the
run, so they go into `Text` objects, never into markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from interlink.store import Outstanding
    from interlink.sync import GivenUp

__all__ = ["show_given_up", "show_owed"]


def show_owed(
    title: str,
    rows: Sequence[Outstanding],
    limit: int | None,
    console: Console | None = None,
) -> None:
    """The owed records, one table per pipeline, oldest failure first: key, step, the run
    it last failed in, how many runs it failed in, since when, and the error."""
    console = console or Console(highlight=False)
    if not rows:
        console.print(Text(f"No failed records owed {title}: every one was written."))
        return
    by_pipeline: dict[str, list[Outstanding]] = {}
    for row in rows:
        by_pipeline.setdefault(row.pipeline, []).append(row)
    for pipeline, owed in by_pipeline.items():
        console.print(_table(pipeline, owed))
    if limit is not None and len(rows) >= limit:
        console.print(Text(f"(the first {limit}; --limit shows more)"))
    console.print(
        Text(
            "Each run fetches them again by id after its read (up to the pipeline's "
            "retry_failed), or counts them failed. `interlink failed forget PIPELINE KEY...` "
            "gives records up."
        )
    )


def _table(pipeline: str, rows: Sequence[Outstanding]) -> Table:
    table = Table(title=f"Failed records not written yet by {pipeline}", title_justify="left")
    table.add_column("key", min_width=3, overflow="fold")
    table.add_column("step", min_width=4)
    table.add_column("run", justify="right", min_width=3)
    table.add_column("tries", justify="right", min_width=5)
    table.add_column("since", min_width=11, no_wrap=True)
    table.add_column("error", min_width=5, ratio=1, overflow="fold")
    for row in rows:
        since = dt.datetime.fromtimestamp(row.first_failed_at).strftime("%m-%d %H:%M")
        table.add_row(
            Text(row.record_key),
            row.step,
            str(row.run_id),
            str(row.attempts),
            since,
            Text(_short(row.error)),
        )
    return table


def show_given_up(key: str, done: GivenUp, *, again: str, console: Console | None = None) -> None:
    """What `forget` did, one line per outcome; `again` is the command that sends the
    records given up now, by id."""
    console = console or Console(highlight=False)
    if done.given_up:
        count = len(done.given_up)
        console.print(
            Text(
                f"Gave up {count} failed record{'' if count == 1 else 's'} of {key}: "
                + ", ".join(done.given_up)
                + ". Runs no longer fetch them again or count them failed; they reach the "
                "destination only if they change at the source, or when sent by id:"
            )
        )
        console.print(Text(f"  {again}"), soft_wrap=True)
    else:
        console.print(Text(f"Nothing given up: {key} owes none of those."))
    if done.unknown:
        console.print(Text("Not owed: " + ", ".join(done.unknown), "yellow"))


def _short(error: str, limit: int = 300) -> str:
    return error if len(error) <= limit else error[: limit - 1] + "…"
