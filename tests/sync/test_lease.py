"""The pipeline lock is renewed from a heartbeat, every write under it is fenced, and a
takeover is a compare-and-set (issue 10, section 3); database work stays off the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import LeaseLostError, PipelineLockedError
from interlink.sandbox import SandboxServer
from interlink.store import Store
from interlink.sync import RunResult, run_pipeline

from .fake_source import FakeSource, config


@pytest.fixture
def source() -> Iterator[tuple[FakeSource, str]]:
    fake = FakeSource(600)
    with SandboxServer(fake.app()) as server:
        yield fake, server.url


@pytest.fixture
def database(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'interlink.db'}"


def build(url: str, database: str) -> InterlinkConfig:
    # One page at a time, so a slow source makes a slow run.
    return InterlinkConfig.model_validate(
        config(
            url,
            database,
            {"p": {"source": "src.items", "destination": "sql:items"}},
            resource={"concurrency": 1},
        )
    )


async def start(cfg: InterlinkConfig, store: Store, **kwargs: Any) -> RunResult:
    async with Catalog(cfg) as catalog:
        return await run_pipeline(cfg, "p", store=store, catalog=catalog, **kwargs)


def test_a_slow_page_does_not_let_another_run_take_the_lock(source, database):
    """main: the lock was renewed only when a page committed, so a page slower than the
    lease let a second run take the pipeline over while the first still wrote."""
    fake, url = source
    fake.delay = 0.5
    cfg = build(url, database)
    store = Store.open(cfg.database)
    outcomes: list[str] = []

    async def scenario() -> RunResult:
        first = asyncio.create_task(start(cfg, store, lease=0.6))
        await asyncio.sleep(1.6)  # several leases later, the first run is still reading
        for _ in range(3):
            try:
                await asyncio.to_thread(store.begin_run, "p", lease=0.6)
                outcomes.append("taken over")
            except PipelineLockedError:
                outcomes.append("refused")
            await asyncio.sleep(0.3)
        return await first

    result = asyncio.run(scenario())
    assert outcomes == ["refused"] * 3
    assert result.ok and result.counts["read"] == 600
    store.close()


def test_a_run_whose_lock_was_taken_over_stops_and_writes_nothing_more(source, database):
    fake, url = source
    fake.delay = 0.2
    cfg = build(url, database)
    store = Store.open(cfg.database)

    async def scenario() -> RunResult:
        run = asyncio.create_task(start(cfg, store, lease=30))
        while not store.runs("p") or store.runs("p")[0]["pages"] < 2:
            await asyncio.sleep(0.05)
        with store.transaction() as conn:  # another run takes the lock over
            conn.exec_driver_sql("UPDATE interlink_locks SET run_id = 424242 WHERE pipeline = 'p'")
        return await run

    with pytest.raises(LeaseLostError, match="no longer holds"):
        asyncio.run(scenario())
    state = store.load_state("p")
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT COUNT(*) FROM items").scalar_one()
    assert rows == state.checkpoint["offset"] if state.checkpoint else rows <= 300
    assert rows < 600, "the batches after the takeover were not written"
    assert store.runs("p")[0]["status"] == "failed"
    store.close()


def test_taking_over_a_stale_lock_is_a_compare_and_set(tmp_path):
    """Two runs that both found the same expired lock: exactly one takes it."""
    store = Store.open(f"sqlite:///{tmp_path / 'locks.db'}")
    first = store.begin_run("p", lease=0.01)
    time.sleep(0.05)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    original = store.transaction

    def racing_transaction():  # both contenders read the stale lock before either writes
        barrier.wait(timeout=5)
        return original()

    store.transaction = racing_transaction  # type: ignore[method-assign]

    def contend() -> None:
        try:
            store.begin_run("p", lease=60)
            outcomes.append("took")
        except PipelineLockedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=contend) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.transaction = original  # type: ignore[method-assign]
    assert sorted(outcomes) == ["refused", "took"]
    assert store.run(first)["status"] == "crashed"
    store.close()


def test_batch_commits_do_not_block_the_event_loop(source, tmp_path):
    """main: the runner committed on the event loop; while another connection held the
    database's write lock, the loop (and a server's API and heartbeats) stood still."""
    fake, url = source
    path = tmp_path / "interlink.db"
    cfg = build(url, f"sqlite:///{path}")
    store = Store.open(cfg.database)
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    def hold_write_lock(seconds: float) -> None:
        conn = sqlite3.connect(path, timeout=10)
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        conn.rollback()
        conn.close()

    async def scenario() -> RunResult:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        holder = threading.Thread(target=hold_write_lock, args=(1.0,))
        holder.start()
        await asyncio.sleep(0.05)
        result = await start(cfg, store)
        holder.join()
        stop.set()
        await ticking
        return result

    result = asyncio.run(scenario())
    assert result.ok
    assert max(gaps) < 0.5, f"the event loop stood still for {max(gaps):.2f} s"
    store.close()
