"""What a run owes its destination: the pipeline's records that failed in a run and that no
run has written since (`store._outstanding`, `interlink failed`).

```python
owed = Owed.load(store, "customers", key="id")   # at the run's start (a thread)
owed.book(conn, run_id, records, failures)       # per batch, in its transaction
owed.left_over()                                 # after the read: owed, and not met in it
```

A failed record is owed from the batch it failed in (same transaction), and settled by the
batch that writes it, or that the filter leaves it out of, or that deletes it: whatever
run that is (a read, a run by id, the retry at the end of a read). A read into a staging
table settles only when that table is swapped in (`defer`, `settle_deferred`): a staging
table that is dropped wrote nothing. With nothing owed, a batch costs nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from interlink.connectors import Record
from interlink.errors import NotFoundError
from interlink.store import Store, owed_keys, settle

from ._sink import Conn, Failure

__all__ = ["Owed"]

_SHOWN = 10
"""Keys a run's note names."""


class Owed:
    """The records pipeline `name` (its state key) owes, by key (as text)."""

    def __init__(self, store: Store, name: str, key: str, owed: dict[str, int]) -> None:
        self.store = store
        self.name = name
        self.key = key
        """The source's primary key: what a record is owed under."""
        self.keys = owed
        """Owed now: key -> the run it last failed in."""
        self.before = dict(owed)
        """Owed when the run began."""
        self.met: set[str] = set()
        """Keys owed before the run that a batch of it wrote, left out or failed again."""
        self.owes_not_found = True
        """Whether an id the source answered 404 for is owed: yes for ids taken from
        records (those fetched again); a run by id names ids someone typed, and one the
        source does not have is a failed record, not a debt."""
        self.defer = False
        """Settle nothing batch by batch: the batches go to a staging table, which only its
        swap makes the destination (`settle_deferred`)."""
        self.deferred: list[str] = []

    @classmethod
    def load(cls, store: Store, name: str, key: str) -> Owed:
        """What `name` owes now (a query: run it in a thread)."""
        with store.read() as conn:
            return cls(store, name, key, owed_keys(conn, name))

    def book(
        self, conn: Conn, run_id: int, records: Iterable[Record], failures: Sequence[Failure]
    ) -> None:
        """In the batch's transaction: its failed records (with a key) are owed, and the
        owed ones among `records` that did not fail are settled. A record without a key
        cannot be followed: the run's failure count is all there is of it."""
        failed: dict[str, tuple[str, str]] = {}
        for key, step, error in failures:
            if step == "fetch" and not self.owes_not_found and isinstance(error, NotFoundError):
                continue
            if key is not None:
                failed[str(key)] = (step, f"{type(error).__name__}: {error}")
        if self.keys:
            field = self.key
            done = [
                text
                for text in {str(r.get(field)) for r in records if r.get(field) is not None}
                if text in self.keys and text not in failed
            ]
            if done and self.defer:
                self.deferred.extend(done)
            elif done:
                settle(conn, self.name, done)
                for text in done:
                    del self.keys[text]
            self.met.update(done)
        if failed:
            rows = [(text, step, error) for text, (step, error) in failed.items()]
            self.store.owe(conn, self.name, run_id, rows)
            for text in failed:
                self.keys[text] = run_id
            self.met.update(failed)

    def settle_deferred(self, conn: Conn, *, swapped: bool) -> None:
        """In the transaction of a staged read's last batch: what its batches wrote is
        settled when the staging table was swapped in; otherwise it is still owed."""
        done = [key for key in dict.fromkeys(self.deferred) if key in self.keys]
        self.deferred = []
        if swapped and done:
            self.drop(conn, done)

    def note(self) -> list[str]:
        """What the run leaves owed, for its warnings: nothing, or how many (the first
        keys) and what comes next."""
        if not self.keys:
            return []
        keys = list(self.keys)
        count = f"{len(keys)} record" + ("" if len(keys) == 1 else "s")
        shown = ", ".join(keys[:_SHOWN]) + (
            f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
        )
        return [
            f"not in the destination yet: {count} of {self.name} that failed ({shown}); "
            "each run fetches them again by id, or counts them failed, until they are "
            "written or given up (`interlink failed list` shows them)"
        ]

    def left_over(self) -> list[str]:
        """The keys owed before this run that no batch of it met, in the order owed."""
        return [key for key in self.before if key not in self.met and key in self.keys]

    def drop(self, conn: Conn, keys: Sequence[str]) -> None:
        """In the caller's transaction: `keys` are owed no more."""
        settle(conn, self.name, keys)
        for key in keys:
            self.keys.pop(key, None)
