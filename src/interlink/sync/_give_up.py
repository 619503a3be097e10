"""Give up records a pipeline owes, by hand: `interlink failed forget PIPELINE KEY...`.

A record that failed in a run stays owed (`interlink_outstanding`) until a run writes it,
and until then every run of the pipeline fetches it again or counts it failed. When the
record will never be written (it is wrong at the source and will stay so, or it belongs
elsewhere), giving it up ends that: later runs no longer try it or count it. Nothing is
written or deleted at the destination.

The pipeline's lock is held meanwhile (as `OWED_HOLDER`), as a run takes it: a run
settling or owing the same records at that moment would otherwise undo the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from interlink.config import InterlinkConfig
from interlink.store import LOCK_LEASE, OWED_HOLDER, Store, forget_outstanding

from ._accounts import split_key
from ._lease import take_lock_for
from ._open_sink import pipeline_config

__all__ = ["GivenUp", "give_up"]


@dataclass
class GivenUp:
    """What `give_up` did: the keys no longer owed, and those that were not owed."""

    given_up: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def give_up(
    config: InterlinkConfig, store: Store, key: str, record_keys: Sequence[str] | None
) -> GivenUp:
    """Give up the records `record_keys` (None: every one) that pipeline `key` (`NAME` or
    `NAME@ACCOUNT`) owes, under its lock; PipelineLockedError while it runs."""
    name, _ = split_key(key)
    pipeline_config(config, name)
    wanted = None if record_keys is None else list(dict.fromkeys(record_keys))
    take_lock_for(store, key, OWED_HOLDER, "its failed records cannot be given up")
    try:
        with store.begin() as conn:
            # Still the pipeline's holder, or nothing is given up (LeaseLostError).
            store.hold_lock(conn, key, OWED_HOLDER, LOCK_LEASE)
            gone = forget_outstanding(conn, key, wanted)
    finally:
        store.release_lock(key, OWED_HOLDER)
    unknown = [] if wanted is None else [k for k in wanted if k not in set(gone)]
    return GivenUp(given_up=gone, unknown=unknown)
