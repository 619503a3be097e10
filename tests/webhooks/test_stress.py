"""The webhook stress battery (issue 12, "Proof"), on both backends.

2,000 deliveries to a real `interlink serve --no-worker`: 10% resends of deliveries already
sent, 5% with a bad signature, 2% with a stale timestamp, 1% with a malformed header, sent
16 at a time while `interlink worker` processes them and is SIGKILLed five times (each time
while it has a delivery in hand), then started again. At the end every valid delivery was
processed exactly once in effect (the handler's effect table holds each once), none was
lost, no invalid one was stored, every refusal is in the rejected-deliveries log, and no
request got a 5xx. The test asserts the faults really happened: five kills, each of a
worker in the middle of a handler, and every fault kind sent and refused.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import yaml

from interlink.config import InterlinkConfig
from interlink.store import deliveries, rejections
from interlink.webhooks import sign
from tests.jobs.procrastinate_schema import fresh_schema
from tests.server.serving import serve_process
from tests.webhooks.conftest import STANDARD_SECRET

TOTAL = 2_000
KILLS = 5
SENDERS = 16
HANDLER = "tests.webhooks.stress_handler:apply"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stress.db'}"
        return
    request.applymarker(pytest.mark.postgres)
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_hook_stress") as url:
        yield url


def plan(seed: int = 12) -> list[tuple[str, int]]:
    """(kind, n) for each delivery to send, in order: valid n, resend of valid n, bad..."""
    rng = random.Random(seed)
    kinds = (
        ["duplicate"] * (TOTAL // 10)
        + ["bad_signature"] * (TOTAL * 5 // 100)
        + ["stale"] * (TOTAL * 2 // 100)
        + ["malformed"] * (TOTAL // 100)
    )
    kinds += ["valid"] * (TOTAL - len(kinds))
    rng.shuffle(kinds)
    # A resend needs something sent before it: move any early ones after the first valid.
    first_valid = kinds.index("valid")
    early = [k for k in kinds[:first_valid] if k == "duplicate"]
    kinds = [k for k in kinds[:first_valid] if k != "duplicate"] + kinds[first_valid:] + early
    sent: list[int] = []
    out: list[tuple[str, int]] = []
    for number, kind in enumerate(kinds):
        if kind == "valid":
            sent.append(number)
            out.append((kind, number))
        elif kind == "duplicate":
            out.append((kind, rng.choice(sent)))
        else:
            out.append((kind, number))
    return out


def request(config: Any, kind: str, n: int) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"id": f"evt_{n}", "type": "thing.changed", "data": {"n": n}})
    at = int(time.time()) - (3600 if kind == "stale" else 0)
    headers = sign(config, body, timestamp=at, delivery_id=f"msg_{n}")
    if kind == "bad_signature":
        headers["webhook-signature"] = "v1," + "A" * 43 + "="
    elif kind == "malformed":
        headers["webhook-timestamp"] = "not-a-time"
    headers["content-type"] = "application/json"
    return body, headers


def worker(config_path: Path, effects: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "STRESS_EFFECTS": str(effects)}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from interlink.cli.main import main; main()",
            "worker",
            "--config",
            str(config_path),
            "--concurrency",
            "4",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def in_hand(effects: Path, pid: int) -> int:
    """Handler calls of worker `pid` begun and not finished (the effects file says)."""
    with sqlite3.connect(effects, timeout=10) as db:
        found = db.execute(
            "SELECT count(*) FROM calls WHERE pid = ? AND ended = 0", (pid,)
        ).fetchone()
    return int(found[0])


def test_two_thousand_deliveries_through_five_worker_kills(
    database_url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.db"
    with sqlite3.connect(effects) as db:
        db.execute("CREATE TABLE effects (delivery TEXT PRIMARY KEY, n INTEGER)")
        db.execute(
            "CREATE TABLE calls (id INTEGER PRIMARY KEY, delivery TEXT, pid INTEGER, ended INTEGER)"
        )
        db.execute("PRAGMA journal_mode=WAL")
    settings = {
        "database": database_url,
        "jobs": {"lease": 1.5, "poll_interval": 0.05, "retry_delay": 0.05, "max_attempts": 10},
        "webhooks": {
            "hooks": {
                "scheme": "standard",
                "secret": STANDARD_SECRET,
                "actions": {"*": {"handler": HANDLER}},
            }
        },
    }
    config_path = tmp_path / "interlink.yaml"
    config_path.write_text(yaml.safe_dump(settings))
    source = InterlinkConfig.model_validate(settings).webhooks["hooks"]
    sends = plan()
    valid = {n for kind, n in sends if kind == "valid"}
    faults = Counter(kind for kind, _ in sends)

    with serve_process(config_path, "--no-worker") as (api, _):
        url = f"{api}/webhooks/hooks"
        running = worker(config_path, effects)
        answers: list[tuple[str, int, int]] = []
        kills: list[int] = []

        async def send_all() -> None:
            queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
            for item in sends:
                queue.put_nowait(item)
            limits = httpx.Limits(max_connections=SENDERS)
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:

                async def sender() -> None:
                    while not queue.empty():
                        kind, n = queue.get_nowait()
                        body, headers = request(source, kind, n)
                        answer = await client.post(url, content=body, headers=headers)
                        answers.append((kind, n, answer.status_code))

                await asyncio.gather(*(sender() for _ in range(SENDERS)))

        async def killer() -> None:
            nonlocal running
            deadline = time.monotonic() + 120
            while len(kills) < KILLS and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                # Kill only a worker with a handler in hand: a crash mid-delivery.
                if await asyncio.to_thread(in_hand, effects, running.pid) == 0:
                    continue
                running.send_signal(signal.SIGKILL)
                running.wait(10)
                kills.append(running.pid)
                running = worker(config_path, effects)

        async def both() -> None:
            await asyncio.gather(send_all(), killer())

        try:
            asyncio.run(both())
            done = wait_processed(database_url, len(valid), timeout=120)
        finally:
            running.send_signal(signal.SIGTERM)
            try:
                running.wait(20)
            except subprocess.TimeoutExpired:
                running.kill()
                running.wait(5)

    # The faults happened: every kind was sent, and five workers died mid-handler.
    assert faults["duplicate"] == 200 and faults["bad_signature"] == 100
    assert faults["stale"] == 40 and faults["malformed"] == 20
    assert len(kills) == KILLS, f"only {len(kills)} kills landed mid-handler"
    with sqlite3.connect(effects) as db:
        killed_calls = db.execute(
            f"SELECT count(*) FROM calls WHERE ended = 0 AND pid IN ({','.join('?' * KILLS)})",
            kills,
        ).fetchone()[0]
        effect_rows = dict(db.execute("SELECT delivery, n FROM effects").fetchall())
        calls = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    assert killed_calls >= KILLS, "no handler call was cut short by a kill"

    # No 5xx, and each kind got its answer.
    statuses = Counter((kind, status) for kind, _, status in answers)
    assert not [a for a in answers if a[2] >= 500], statuses
    # One 202 per valid delivery; every other send of it got 200 (a resend may race ahead
    # of its original: then the resend is the one stored).
    firsts = Counter(n for kind, n, status in answers if status == 202)
    assert set(firsts) == valid and set(firsts.values()) == {1}, statuses
    assert statuses[("valid", 200)] + statuses[("duplicate", 200)] == faults["duplicate"]
    assert statuses[("bad_signature", 401)] == faults["bad_signature"], statuses
    assert statuses[("stale", 401)] == faults["stale"], statuses
    assert statuses[("malformed", 400)] == faults["malformed"], statuses

    # Every valid delivery stored once and processed; nothing invalid stored; refusals logged.
    assert done, "not every delivery was processed in time"
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(deliveries.c.delivery_id, deliveries.c.status)).all()
            refused = conn.execute(sa.select(sa.func.count()).select_from(rejections)).scalar()
    finally:
        engine.dispose()
    assert sorted(r.delivery_id for r in rows) == sorted(f"msg_{n}" for n in valid)
    assert {r.status for r in rows} == {"processed"}
    assert refused == faults["bad_signature"] + faults["stale"] + faults["malformed"]
    # Exactly once in effect: each valid delivery's effect once, though some handlers ran twice.
    assert sorted(effect_rows) == sorted(f"msg_{n}" for n in valid)
    assert calls > len(valid), "no handler ran twice: the kills tested nothing"


def wait_processed(database_url: str, expected: int, *, timeout: float) -> bool:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                count = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(deliveries)
                    .where(deliveries.c.status == "processed")
                ).scalar()
            if count == expected:
                return True
            time.sleep(0.25)
        return False
    finally:
        engine.dispose()
