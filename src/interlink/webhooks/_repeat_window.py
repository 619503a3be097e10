"""A delivery without a sender's id: known by its body's hash within the source's
`repeat_window`, a new delivery after it.

```python
again = retire_repeats(conn, batch, before, window_of)   # arrivals to insert again
event_delivery_id("sha256:ab..", body, 17)               # 'sha256:ab..#17'
```

The inbox keys such a delivery `sha256:<hex of the body>` (webhooks/_inputs.py), so a
sender's retry of the same body is answered as a duplicate. Kept for good, that key
dropped every later event whose body happened to be the same; now the same body is a
retry only within `repeat_window` of the stored one. Past it, the stored row's id is
retired to `sha256:<hex>#<row id>` (only while it still has the key: another writer may
have retired it first) and the arrival is inserted as a new delivery. An action sees such
an id as `sha256:<hex>#<row id>` from the start, the id the row keeps once retired, so a
handler keyed on it never takes the later event for the earlier one. A sender's own id
never expires.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from ._inbox import Arrival

__all__ = ["event_delivery_id", "is_body_hash", "retire_repeats"]

_RETIRE = sa.text(
    "UPDATE interlink_webhook_deliveries SET delivery_id = :new "
    "WHERE id = :row AND delivery_id = :old"
)


def is_body_hash(delivery_id: str, body: bytes) -> bool:
    """Whether `delivery_id` is the hash of `body` (its sender gave no id)."""
    return delivery_id == "sha256:" + hashlib.sha256(body).hexdigest()


def retire_repeats(
    conn: sa.Connection,
    batch: Sequence[Arrival],
    before: Mapping[tuple[str, str], tuple[int, str, int | None, float]],
    window_of: Callable[[str], float],
) -> list[Arrival]:
    """The arrivals of `batch` keyed by their body's hash whose stored row (`before`: row
    id, status, job id, received_at) came longer ago than their source's window: their
    rows' ids retired, the arrivals to insert again (one per key)."""
    again: list[Arrival] = []
    retired: list[dict[str, Any]] = []
    taken: set[tuple[str, str]] = set()
    for arrival in batch:
        key = (arrival.source, arrival.delivery_id)
        found = before.get(key)
        if found is None or key in taken or not is_body_hash(arrival.delivery_id, arrival.body):
            continue
        row_id, _, _, received_at = found
        if arrival.received_at - received_at <= window_of(arrival.source):
            continue
        taken.add(key)
        again.append(arrival)
        old = arrival.delivery_id
        retired.append({"row": row_id, "old": old, "new": f"{old}#{row_id}"})
    if retired:
        conn.execute(_RETIRE, retired)
    return again


def event_delivery_id(delivery_id: str, body: bytes, row_id: int) -> str:
    """The delivery id an action sees: a body-hash id as the row's own,
    `sha256:<hex>#<row id>`; any other as it is."""
    if delivery_id.startswith("sha256:") and "#" not in delivery_id:
        if is_body_hash(delivery_id, body):
            return f"{delivery_id}#{row_id}"
    return delivery_id
