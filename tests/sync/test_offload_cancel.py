"""A run cancelled while a batch commits in a thread (`offload`: a server's or a worker's
run) waits for that commit to end before it is recorded as ended: the recorded counts
include the batch, and the lock is released only after its transaction closed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
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
                        "paginate": {"type": "offset", "page_size": 50, "overlap": 0},
                    }
                }
            },
            "pipelines": {
                "customers": {"source": "shop.customers", "destination": "sql:customers"}
            },
        }
    )


def _slow_second_commit(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[float]]:
    """The second batch's commit made slow; the event is set when it starts, and the list
    gets the time each commit ended."""
    in_commit = threading.Event()
    commits: list[float] = []
    real = SqlSink.commit

    def slow_commit(self: SqlSink, conn: Any, sent: Any, run_id: int) -> Any:
        if len(commits) == 1:  # the second batch: slow, and the test cancels meanwhile
            in_commit.set()
            time.sleep(0.5)
        counts = real(self, conn, sent, run_id)
        commits.append(time.monotonic())
        return counts

    monkeypatch.setattr(SqlSink, "commit", slow_commit)
    return in_commit, commits


async def _cancel_in_commit(
    config: InterlinkConfig,
    start: Callable[[Catalog], Awaitable[Any]],
    in_commit: threading.Event,
) -> float:
    """Start the run, cancel it once the slow commit began; when the cancel got through."""
    async with Catalog(config) as catalog:
        task = asyncio.ensure_future(start(catalog))
        while not in_commit.is_set():
            await asyncio.sleep(0.005)
        task.cancel("stopped by the test")
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()


def test_a_cancel_during_a_commit_in_a_thread_waits_for_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_commit, commits = _slow_second_commit(monkeypatch)
    with SandboxServer(create_shop_app(records=200, token=TOKEN)) as shop:
        config = _config(shop.url, f"sqlite:///{tmp_path / 'interlink.db'}")
        store = Store.open(config.database)

        def start(catalog: Catalog) -> Awaitable[Any]:
            return run_pipeline(config, "customers", store=store, catalog=catalog, offload=True)

        ended = asyncio.run(_cancel_in_commit(config, start, in_commit))
        (run,) = store.runs("customers", limit=1)
        with store.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM customers").scalar()
            locks = conn.exec_driver_sql("SELECT count(*) FROM interlink_locks").scalar()
        store.close()
    assert len(commits) == 2 and commits[1] <= ended, "the slow commit ran to its end first"
    assert run["status"] == "cancelled"
    assert stored == 100 and run["created"] == 100, "both batches, and counted"
    assert locks == 0


def test_a_cancel_during_a_commit_of_a_run_by_id_waits_for_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for a run by id, and so for the records a read's run fetches again by id
    after its read (`pay_owed`), which every worker's run may do: it committed with a bare
    `asyncio.to_thread`, so a cancel recorded the run as ended while a batch still
    committed (its rows written, its counts missing from the run). On PostgreSQL nothing
    else waits for that transaction (on SQLite the run's end waits for the write lock)."""
    from interlink.sync import run_records

    in_commit, commits = _slow_second_commit(monkeypatch)
    with SandboxServer(create_shop_app(records=200, token=TOKEN)) as shop:
        config = _config(shop.url, postgres_url)
        store = Store.open(config.database)
        with store.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS customers")
            conn.exec_driver_sql("DELETE FROM interlink_locks WHERE pipeline = 'customers'")

        def start(catalog: Catalog) -> Awaitable[Any]:
            ids = list(range(1, 201))  # two batches of 100 ids
            return run_records(config, "customers", ids, store=store, catalog=catalog)

        try:
            ended = asyncio.run(_cancel_in_commit(config, start, in_commit))
            (run,) = store.runs("customers", limit=1)
            with store.read() as conn:
                stored = conn.exec_driver_sql("SELECT count(*) FROM customers").scalar()
                locks = conn.exec_driver_sql(
                    "SELECT count(*) FROM interlink_locks WHERE pipeline = 'customers'"
                ).scalar()
        finally:
            store.close()
    assert len(commits) == 2 and commits[1] <= ended, "the slow commit ran to its end first"
    assert run["status"] == "cancelled"
    assert stored == 200 and run["created"] == 200, "both batches, and counted"
    assert locks == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_signal_just_after_a_commit_leaves_the_run_counting_that_batch(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, backend: str
) -> None:
    """A stop signal is raised wherever the main thread is (SIGINT's KeyboardInterrupt,
    Prefect's termination signal on SIGTERM): landing after a batch's transaction
    committed but before the run's counters took it in, the run was recorded with that
    batch's rows written and not counted (a CI run of the Prefect SIGTERM test caught 290
    created with 385 rows and the checkpoint past them). The run's end keeps the counts
    its last transaction committed."""
    from contextlib import contextmanager

    from interlink.sync._sql_sink import SqlSink as Sink

    class TerminationSignal(BaseException):
        """Stands in for Prefect's stop signal (a BaseException raised by its handler)."""

    commits: list[int] = []

    @contextmanager
    def signalled_after_commit(self: Sink) -> Any:
        with self.store.begin() as conn:
            yield conn
        commits.append(1)
        if len(commits) == 2:  # the second batch
            raise TerminationSignal("SIGTERM")

    monkeypatch.setattr(Sink, "transaction", signalled_after_commit)
    with SandboxServer(create_shop_app(records=200, token=TOKEN)) as shop:
        if backend == "sqlite":
            database = f"sqlite:///{tmp_path / 'interlink.db'}"
        else:
            database = request.getfixturevalue("postgres_url")
        config = _config(shop.url, database)
        store = Store.open(config.database)
        with store.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS customers")
            conn.exec_driver_sql("DELETE FROM interlink_locks WHERE pipeline = 'customers'")
            conn.exec_driver_sql("DELETE FROM interlink_state WHERE pipeline = 'customers'")

        async def run() -> None:
            async with Catalog(config) as catalog:
                await run_pipeline(config, "customers", store=store, catalog=catalog)

        with pytest.raises(TerminationSignal):
            asyncio.run(run())
        (run_row,) = store.runs("customers", limit=1)
        with store.read() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM customers").scalar()
        store.close()
    assert len(commits) == 2, "the signal landed after the second batch committed"
    assert run_row["status"] == "cancelled"
    assert stored == 100 and run_row["created"] == 100, "both batches written, and counted"
