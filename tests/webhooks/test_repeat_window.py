"""A delivery without a delivery id is known by its body's hash (`sha256:...`). Kept for
good, that key dropped every later event whose body happened to be the same (a sender
posting `{"event": "stock.low", "sku": "A-1"}` twice a day lost the second). Now the same
body is a retry only within the source's `repeat_window` of the first; after it, it is a
new delivery with a job of its own. On SQLite and PostgreSQL (each inbox path)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import Queue, open_queue
from interlink.store import Store, deliveries, get_delivery
from interlink.webhooks import Arrival, Inbox, Stored, _inbox as inbox_module
from interlink.webhooks._dispatch import _event
from interlink.webhooks._inbox import InboxWriter
from interlink.webhooks._repeat_window import retire_repeats
from tests.jobs.procrastinate_schema import fresh_schema

BODY = b'{"event": "stock.low", "sku": "A-1"}'
HASHED = "sha256:" + hashlib.sha256(BODY).hexdigest()
T0 = 1_800_000_000.0


class Rig:
    def __init__(self, url: str) -> None:
        self.config = InterlinkConfig.model_validate(
            {
                "database": url,
                "webhooks": {
                    "stock": {"scheme": "hmac", "secret": "s"},  # no delivery_id: hashed
                    "quick": {"scheme": "hmac", "secret": "s", "repeat_window": "1m"},
                },
            }
        )
        self.store = Store.open(self.config.database)
        self.queue: Queue = open_queue(self.config, self.store)
        self.inbox = Inbox(self.store, self.queue)

    def accept(self, source: str, at: float, delivery_id: str = HASHED) -> Stored:
        arrival = Arrival(source, delivery_id, "stock.low", at, BODY, {})
        return asyncio.run(self.inbox.accept(arrival))

    def accept_together(self, source: str, at: float, count: int) -> list[Stored]:
        async def together() -> list[Stored]:
            arrival = Arrival(source, HASHED, "stock.low", at, BODY, {})
            return list(await asyncio.gather(*(self.inbox.accept(arrival) for _ in range(count))))

        return asyncio.run(together())

    def rows(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            query = sa.select(deliveries.c.id, deliveries.c.delivery_id, deliveries.c.job_id)
            return [dict(r) for r in conn.execute(query.order_by(deliveries.c.id)).mappings()]

    def close(self) -> None:
        self.inbox.close()
        self.queue.close()
        self.store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "sqlite":
        made = Rig(f"sqlite:///{tmp_path / 'repeat.db'}")
        try:
            yield made
        finally:
            made.close()
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_repeat") as url:
        made = Rig(url)
        try:
            yield made
        finally:
            made.close()


def test_the_same_body_is_a_retry_within_the_window_and_a_new_delivery_after(rig: Rig) -> None:
    first = rig.accept("stock", T0)
    assert not first.duplicate and first.job_id is not None
    retry = rig.accept("stock", T0 + 300)  # Slack's retries come after 1 and 5 minutes
    assert retry.duplicate and retry.id == first.id
    later = rig.accept("stock", T0 + 3600 + 1)  # the default window: an hour
    assert not later.duplicate and later.id != first.id
    assert later.job_id is not None and later.job_id != first.job_id
    # The second one's window starts with it.
    again = rig.accept("stock", T0 + 3600 + 2)
    assert again.duplicate and again.id == later.id
    assert rig.rows() == [
        {"id": first.id, "delivery_id": f"{HASHED}#{first.id}", "job_id": first.job_id},
        {"id": later.id, "delivery_id": HASHED, "job_id": later.job_id},
    ]


def test_the_window_is_the_sources_and_a_senders_own_id_never_expires(rig: Rig) -> None:
    first = rig.accept("quick", T0)
    assert rig.accept("quick", T0 + 60).duplicate  # within `repeat_window: 1m`
    assert not rig.accept("quick", T0 + 61).duplicate
    # An id the sender gave is its delivery's for good, however late it comes again.
    own = rig.accept("stock", T0, delivery_id="evt_1")
    assert rig.accept("stock", T0 + 30 * 86400, delivery_id="evt_1").id == own.id
    # So is an id that only looks like a hash of something else.
    lookalike = rig.accept("stock", T0, delivery_id="sha256:" + "0" * 64)
    late = rig.accept("stock", T0 + 30 * 86400, delivery_id="sha256:" + "0" * 64)
    assert late.duplicate and late.id == lookalike.id
    assert first.id != own.id


def test_copies_arriving_together_after_the_window_make_one_new_delivery(rig: Rig) -> None:
    first = rig.accept("stock", T0)
    copies = rig.accept_together("stock", T0 + 7200, 5)
    new = {s.id for s in copies}
    assert len(new) == 1 and first.id not in new
    assert sum(not s.duplicate for s in copies) == 1
    assert [r["delivery_id"] for r in rig.rows()] == [f"{HASHED}#{first.id}", HASHED]


def test_one_body_to_two_sources_after_the_window_is_new_at_each(rig: Rig) -> None:
    """A sender fanning one body out to two sources: both past the window in one batch,
    each source gets its new delivery (the second was answered as a duplicate of its old
    row: its repeat was deduplicated by id alone, not by source and id)."""
    writer = InboxWriter(rig.store, rig.queue)
    conn = writer._connect()
    try:
        first = writer._write(conn, [_arrival("stock", T0), _arrival("quick", T0)])
        later = writer._write(conn, [_arrival("stock", T0 + 7200), _arrival("quick", T0 + 7200)])
    finally:
        writer._release(conn)
    assert [s.duplicate for s in later] == [False, False]
    assert {s.id for s in later}.isdisjoint({s.id for s in first})


@pytest.mark.postgres
def test_a_key_retired_by_another_writer_meanwhile_is_stored_not_failed(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers on PostgreSQL (autocommit): B's insert meets the old row, then A
    retires it (committed at once) before B looks the key up. B found the key nowhere and
    failed its whole batch (every request 503); it now tries the free key again."""
    with fresh_schema(postgres_url, "test_repeat_race") as url:
        rig = Rig(url)
        a, b = InboxWriter(rig.store, rig.queue), InboxWriter(rig.store, rig.queue)
        conn_a, conn_b = a._connect(), b._connect()
        try:
            a._write(conn_a, [_arrival("stock", T0)])
            arrival = _arrival("stock", T0 + 7200)
            real = inbox_module.store_batch
            interleaved: list[str] = []

            def store_batch(conn: Any, batch: Any, **kwargs: Any) -> Any:
                stored = real(conn, batch, **kwargs)
                if conn is conn_b and not interleaved:
                    interleaved.append("A retires the key")
                    assert real(conn_a, [arrival], **kwargs) == {}
                    before = a._existing(conn_a, [("stock", HASHED)])
                    retire_repeats(conn_a, [arrival], before, a._repeat_window)
                    conn_a.commit()  # ends SQLAlchemy's autobegun block (autocommit: no-op)
                return stored

            monkeypatch.setattr(inbox_module, "store_batch", store_batch)
            [stored] = b._write(conn_b, [arrival])
            monkeypatch.setattr(inbox_module, "store_batch", real)
            [from_a] = a._write(conn_a, [arrival])  # A's own insert, a moment late
        finally:
            a._release(conn_a)
            b._release(conn_b)
            rows = rig.rows()
            rig.close()
    assert interleaved and not stored.duplicate
    assert from_a.duplicate and from_a.id == stored.id
    assert [r["delivery_id"] for r in rows] == [f"{HASHED}#{rows[0]['id']}", HASHED]


def test_an_action_sees_an_id_of_its_own_for_each_event_with_one_body(rig: Rig) -> None:
    """A handler that keys its idempotency on `event.delivery_id` (as docs/webhooks.md
    says to) sees `sha256:<hex>#<row id>` for a delivery with no sender id: the later event
    with the same body is not taken for the earlier one."""
    first = rig.accept("stock", T0)
    later = rig.accept("stock", T0 + 7200)
    shown = {row["id"]: _seen_as(rig, row["id"]) for row in rig.rows()}
    assert shown == {first.id: f"{HASHED}#{first.id}", later.id: f"{HASHED}#{later.id}"}
    # An id the sender gave is shown as it is.
    own = rig.accept("stock", T0, delivery_id="evt_9")
    assert _seen_as(rig, own.id) == "evt_9"


def _seen_as(rig: Rig, row_id: int) -> str:
    """The delivery id the action of stored delivery `row_id` is given."""
    delivery = get_delivery(rig.store.engine, row_id)
    assert delivery is not None
    return _event(delivery).delivery_id


def _arrival(source: str, at: float) -> Arrival:
    return Arrival(source, HASHED, "stock.low", at, BODY, {})
