"""The handler the stress battery names: an idempotent effect, and a log of every call.

It writes to the SQLite file `STRESS_EFFECTS`: `calls` gets a row when a call begins and
is marked when it ends (so the test can kill a worker with a call in hand, and count calls
that a kill cut short), `effects` gets the delivery once however often it runs.
"""

from __future__ import annotations

import os
import sqlite3
import time

from interlink.webhooks import WebhookEvent


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(os.environ["STRESS_EFFECTS"], timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout=30000")
    return db


def apply(event: WebhookEvent) -> dict[str, int]:
    db = _db()
    try:
        call = db.execute(
            "INSERT INTO calls (delivery, pid, ended) VALUES (?, ?, 0)",
            (event.delivery_id, os.getpid()),
        ).lastrowid
        time.sleep(0.01)  # the work: long enough for a kill to land mid-call
        db.execute(
            "INSERT INTO effects (delivery, n) VALUES (?, ?) ON CONFLICT (delivery) DO NOTHING",
            (event.delivery_id, event.payload["data"]["n"]),
        )
        db.execute("UPDATE calls SET ended = 1 WHERE id = ?", (call,))
    finally:
        db.close()
    return {"n": event.payload["data"]["n"]}
