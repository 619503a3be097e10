"""How `interlink bindings ...` draws a pipeline's bindings with rich, in 80 columns.

Imported inside the command functions only. Keys come from the source and the target,
so they go into `Text` objects, never into markup. A pending binding's saved body (the
create it sent) is not shown: it is the record's data, not the binding's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from interlink.store import Binding
    from interlink.sync import Forgotten

__all__ = ["show_bindings", "show_forgotten"]


def show_bindings(
    key: str,
    rows: Sequence[tuple[Binding, float]],
    limit: int | None,
    console: Console | None = None,
) -> None:
    """The bindings as a table: source key, target key, state, last synced."""
    console = console or Console(highlight=False)
    if not rows:
        console.print(Text(f"No bindings of {key}."))
        return
    table = Table(title=f"Bindings of {key}", title_justify="left")
    for column in ("source key", "target key", "state", "synced"):
        table.add_column(column, min_width=len(column), overflow="fold")
    for binding, synced in rows:
        state = Text("pending create", "yellow") if binding.pending else Text("bound")
        at = dt.datetime.fromtimestamp(synced).strftime("%Y-%m-%d %H:%M")
        table.add_row(Text(binding.source_key), Text(binding.target_key or "-"), state, at)
    console.print(table)
    if limit is not None and len(rows) >= limit:
        console.print(Text(f"(the first {limit}; --limit shows more, --key finds one)"))


def show_forgotten(
    key: str, done: Forgotten, *, again: str, console: Console | None = None
) -> None:
    """What `forget` did, one line per outcome; `again` is the command that sends the
    forgotten records now."""
    console = console or Console(highlight=False)
    if done.forgotten:
        count = len(done.forgotten)
        console.print(
            Text(
                f"Forgot {count} binding{'' if count == 1 else 's'} of {key}: "
                + ", ".join(done.forgotten)
                + ". A run now treats these source records as new (matched by match: "
                "fields, else created at the target) when it reads them: an incremental "
                "run reads only records changed since its cursor. To send them now:"
            )
        )
        console.print(Text(f"  {again}"), soft_wrap=True)
    if done.kept_pending:
        console.print(
            Text(
                "Kept pending creates (sent, answer never seen; the next run sends the same "
                "create again with the same idempotency key): "
                + ", ".join(done.kept_pending)
                + ". --pending forgets them too, at the risk of creating them twice.",
                "yellow",
            )
        )
    if done.unknown:
        console.print(Text("No binding for: " + ", ".join(done.unknown), "yellow"))
