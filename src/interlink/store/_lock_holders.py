"""Who holds a pipeline's lock, and what a run refused by it is told.

A pipeline's lock (`interlink_locks`, one row per pipeline or `NAME@ACCOUNT`) is held by a
run (its id) or, for work by hand that is not a run, by a negative holder: forgetting
bindings (`BINDINGS_HOLDER`), giving up failed records (`OWED_HOLDER`), resolving conflict
N (`-N`). Its owner is the process (`host:pid`): a lock whose owner ran on this machine
and is gone is free, whatever its lease says.
"""

from __future__ import annotations

import os
import socket

from interlink.errors import PipelineLockedError

__all__ = [
    "BINDINGS_HOLDER",
    "LOCK_LEASE",
    "OWED_HOLDER",
    "held_by",
    "owner",
    "owner_may_be_alive",
]

LOCK_LEASE = 60.0
"""Seconds a pipeline lock lasts without renewal; a running run renews it every third of
that from a heartbeat, whatever its pages are doing."""

BINDINGS_HOLDER = -(2**31)
"""The lock holder while a pipeline's bindings are changed by hand (`interlink bindings
forget`): the lowest 32-bit integer (the locks' `run_id` is PostgreSQL's `integer`);
conflicts resolved by hand hold it as `-conflict_id`, which never reaches it."""

OWED_HOLDER = BINDINGS_HOLDER + 1
"""The lock holder while records a pipeline owes are given up by hand (`interlink failed
forget`)."""


def owner() -> str:
    """This process, as a lock's owner: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_may_be_alive(owner: str | None) -> bool:
    """False only when `owner` ("host:pid" or "host:pid:anything") ran on this machine and
    that process is gone; an owner on another machine is trusted to its lease."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def held_by(pipeline: str, held_run: int, held_owner: str) -> PipelineLockedError:
    """The refusal for a lock `held_run` holds, by what the holder is doing."""
    if held_run == BINDINGS_HOLDER:
        doing = "its bindings are being changed by hand"
    elif held_run == OWED_HOLDER:
        doing = "its failed records are being given up by hand"
    elif held_run < 0:
        doing = f"conflict {-held_run} of this pipeline is being resolved by hand"
    else:
        return PipelineLockedError(
            f"already running (run {held_run}, {held_owner}); runs of one pipeline never overlap",
            pipeline=pipeline,
        )
    return PipelineLockedError(
        f"{doing} ({held_owner}); try again when that is done", pipeline=pipeline
    )
