"""Requests reserved a batch at a time: never more than the limit across processes, unused
ones given back, small limits exact."""

from __future__ import annotations

import asyncio
import threading

from interlink.config import RouteLimit
from interlink.server._ratelimit import Limiter, batch_size
from interlink.store import Store, peek_rate_limit


def test_batch_sizes_keep_small_limits_exact():
    assert batch_size(RouteLimit(limit=10, period=60)) == 1
    assert batch_size(RouteLimit(limit=39, period=60)) == 1
    assert batch_size(RouteLimit(limit=100, period=60)) == 5
    assert batch_size(RouteLimit(limit=1_000_000, period=60)) == 64


def test_processes_sharing_a_bucket_never_allow_more_than_the_limit(tmp_path):
    # Each thread stands for a server process: its own Limiter, loop and engine.
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    limit = RouteLimit(limit=200, period=3600)  # batches of 10
    allowed: list[int] = []
    lock = threading.Lock()

    def process() -> None:
        store = Store.open(url)
        limiter = Limiter(store.engine)

        async def hammer() -> int:
            decisions = [await limiter.take("shared", limit) for _ in range(150)]
            return sum(d.allowed for d in decisions)

        count = asyncio.run(hammer())
        with lock:
            allowed.append(count)
        store.close()

    threads = [threading.Thread(target=process) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 450 asked: at most the limit, and at most one batch short per process that holds one.
    assert 200 - 3 * 9 <= sum(allowed) <= 200, allowed


def test_small_limits_are_exact_and_remaining_counts_down(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'limits.db'}")

    async def run() -> list[tuple[bool, int]]:
        first, second = Limiter(store.engine), Limiter(store.engine)
        out = []
        for i in range(6):
            decision = await (first if i % 2 else second).take("b", RouteLimit(limit=4, period=60))
            out.append((decision.allowed, decision.remaining))
        return out

    assert asyncio.run(run()) == [
        (True, 3),
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
        (False, 0),
    ]
    store.close()


def test_unused_reservations_go_back_with_the_next_one(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'limits.db'}")
    limit = RouteLimit(limit=100, period=3600)  # batches of 5
    clock = [0.0]
    limiter = Limiter(store.engine, clock=lambda: clock[0])

    async def take() -> int:
        return (await limiter.take("b", limit)).remaining

    assert asyncio.run(take()) == 99  # 5 reserved in the row, 4 held here
    assert peek_rate_limit(store.engine, "b", 100, 3600).remaining == 95
    assert asyncio.run(take()) == 98  # spent locally: no write
    assert peek_rate_limit(store.engine, "b", 100, 3600).remaining == 95
    clock[0] += 1.5  # the lease ran out: the 3 unused go back with the next batch
    assert asyncio.run(take()) == 97
    assert peek_rate_limit(store.engine, "b", 100, 3600).remaining == 93
    store.close()
