"""A run cancelled while a batch commits in a thread (`offload`: a server's or a worker's
run) waits for that commit to end before it is recorded as ended: the recorded counts
include the batch, and the lock is released only after its transaction closed."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.sandbox import SandboxServer, create_shop_app
from interlink.store import Store
from interlink.sync import SqlSink, run_pipeline

TOKEN = "offload-token"


def _config(url: str, database: str) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {"shop": {"base_url": url, "auth": {"type": "bearer", "token": TOKEN}}},
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 50},
                    }
                }
            },
            "pipelines": {
                "customers": {"source": "shop.customers", "destination": "sql:customers"}
            },
        }
    )


def test_a_cancel_during_a_commit_in_a_thread_waits_for_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_commit = threading.Event()
    commits: list[float] = []  # when each commit ended
    real = SqlSink.commit

    def slow_commit(self: SqlSink, conn: Any, sent: Any, run_id: int) -> Any:
        if len(commits) == 1:  # the second batch: slow, and the test cancels meanwhile
            in_commit.set()
            time.sleep(0.5)
        counts = real(self, conn, sent, run_id)
        commits.append(time.monotonic())
        return counts

    monkeypatch.setattr(SqlSink, "commit", slow_commit)
    with SandboxServer(create_shop_app(records=200, token=TOKEN)) as shop:
        config = _config(shop.url, f"sqlite:///{tmp_path / 'interlink.db'}")
        store = Store.open(config.database)

        async def go() -> float:
            async with Catalog(config) as catalog:
                task = asyncio.create_task(
                    run_pipeline(config, "customers", store=store, catalog=catalog, offload=True)
                )
                while not in_commit.is_set():
                    await asyncio.sleep(0.005)
                task.cancel("stopped by the test")
                with pytest.raises(asyncio.CancelledError):
                    await task
                return time.monotonic()

        ended = asyncio.run(go())
        (run,) = store.runs("customers", limit=1)
        with store.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM customers").scalar()
            locks = conn.exec_driver_sql("SELECT count(*) FROM interlink_locks").scalar()
        store.close()
    assert len(commits) == 2 and commits[1] <= ended, "the slow commit ran to its end first"
    assert run["status"] == "cancelled"
    assert stored == 100 and run["created"] == 100, "both batches, and counted"
    assert locks == 0
