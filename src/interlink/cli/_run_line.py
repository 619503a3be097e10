"""The `interlink run ... --id` line that sends records of a pipeline now, by id, whatever
the cursor: printed by commands that leave records for a later run."""

from __future__ import annotations

import shlex

__all__ = ["run_line"]


def run_line(pipeline: str, account: str, keys: list[str]) -> str:
    """The command that fetches and writes records `keys` of `pipeline` (for `account`,
    '' for the default one)."""
    words = ["interlink", "run", pipeline]
    if account:
        words += ["--account", account]
    for key in keys:
        words += ["--id", key]
    return shlex.join(words)
