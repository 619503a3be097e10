"""A hostile review of interlink.prefect (issue 16, section 1): each test here failed on the
code as it was committed, except where it says it guards behaviour that was already right.

Real things throughout: Prefect's test harness (conftest), the sandbox, an `interlink serve`
app on a local port with its worker, SQLite files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.context import get_run_context
from prefect.settings import PREFECT_API_URL

from interlink.client import JobsClient, JobWaitTimeoutError
from interlink.prefect import (
    PipelineRunError,
    RunCounts,
    forward_logs,
    load_project,
    read_resource,
    run_job,
    run_pipeline,
    run_pipelines,
)
from interlink.prefect._project import run_sync
from interlink.sandbox import SandboxServer
from interlink.server import create_app
from interlink.store import Store, create_api_key
from prefect import flow, task
from tests.sync.fake_source import FakeSource, config

from .conftest import task_run_logs

FAST: dict[str, Any] = {"poll_interval": 0.05, "max_interval": 0.2, "timeout": 60}


def _runs(path: Path | str) -> list[dict[str, Any]]:
    store = Store.open(load_project(path).config.database)
    try:
        return store.runs(limit=100)
    finally:
        store.close()


# -- called outside a flow or task run ---------------------------------------------------------


def test_outside_a_run_the_tasks_return_counts_and_raise_interlinks_reason(project):
    """`.fn(...)` (a unit test, a script) has no Prefect run: the tasks asked Prefect for
    its run logger after the run had happened, and raised MissingContextError instead of
    returning the counts, or instead of the PipelineRunError that says why a run failed."""
    counts = run_pipeline.fn("customer_list", config=str(project))
    assert isinstance(counts, RunCounts) and counts.ok and counts.created == 120

    with pytest.raises(PipelineRunError, match="pipeline broken: failed: .*404"):
        run_pipeline.fn("broken", config=str(project))

    records = read_resource.fn("shop.customers", config=str(project), limit=5)
    assert [record["id"] for record in records] == [1, 2, 3, 4, 5]


def test_the_flow_takes_its_config_as_a_path_as_the_tasks_do(project):
    """The example keeps `CONFIG = Path(__file__).with_name("interlink.yaml")`; the tasks
    took it, and `run_pipelines(config=CONFIG)` was refused by Prefect's parameter check
    (ParameterTypeError: config must be a string) before anything ran."""
    counts = run_pipelines(["customer_list"], config=Path(project))
    assert counts["customer_list"].ok and counts["customer_list"].created == 120


# -- retries: Prefect's on top of the job queue's -----------------------------------------------


@pytest.fixture
def server(project) -> Iterator[tuple[str, str, Store]]:
    loaded = load_project(project).config
    store = Store.open(loaded.database)
    try:
        key = create_api_key(store.engine, "prefect", "write").secret
        assert key is not None
        with SandboxServer(create_app(loaded, store=store, worker=True)) as api:
            yield api.url, key, store
    finally:
        store.close()


def _jobs(url: str, key: str) -> list[dict[str, Any]]:
    with JobsClient(url, key) as client:
        return list(client.list_jobs())


def test_a_prefect_retry_of_run_job_waits_for_the_job_it_queued(server, monkeypatch):
    """A user who adds Prefect retries to `run_job` (a wait that gave up, the server
    restarting under a long wait) got a second job of the same pipeline queued while the
    first still ran: every attempt sent a new idempotency key."""
    url, key, _ = server
    waits: list[int] = []
    real_wait = JobsClient.wait_for_job

    def wait_once_then_give_up(self: JobsClient, job_id: int, **kwargs: Any) -> dict[str, Any]:
        waits.append(job_id)
        if len(waits) == 1:
            raise JobWaitTimeoutError("still queued after 0 s; the job goes on", job_id=job_id)
        return real_wait(self, job_id, **kwargs)

    monkeypatch.setattr(JobsClient, "wait_for_job", wait_once_then_give_up)
    retried = run_job.with_options(retries=2, retry_delay_seconds=0)

    @flow
    def remote() -> RunCounts:
        return retried("customer_list", server_url=url, api_key=key, **FAST)

    counts = remote()
    assert len(waits) == 2, "the fault fired once, then the retry waited"
    assert counts.ok and counts.job_id == waits[0] == waits[1]
    assert [job["id"] for job in _jobs(url, key)] == [waits[0]], "one job, not two"


def test_a_prefect_retry_after_a_failed_job_queues_a_new_one(server):
    """...while a retry after a job that failed (the queue's own attempts spent) runs the
    pipeline again rather than handing back the same failure."""
    url, key, _ = server
    retried = run_job.with_options(retries=1, retry_delay_seconds=0)

    @flow
    def remote() -> object:
        return retried("broken", server_url=url, api_key=key, **FAST)

    state = remote(return_state=True)
    assert state.is_failed()
    jobs = _jobs(url, key)
    assert [job["status"] for job in jobs] == ["failed", "failed"], jobs


# -- logs: the console is the process's own -----------------------------------------------------


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_forwarding_does_not_print_interlinks_debug_lines_on_the_console(project):
    """To forward DEBUG records the interlink logger's level was lowered for the task's
    duration, and every record then also propagated to the root logger's handlers
    (Prefect's console handler has level 0): one console line per HTTP request, from
    this task and from any other thread of the process."""
    root = logging.getLogger()
    kept = _Kept()
    interlink_logger = logging.getLogger("interlink")
    level, propagate = interlink_logger.level, interlink_logger.propagate

    @task
    def noisy(path: str) -> object:
        with forward_logs(load_project(path).redactor, level="DEBUG"):
            logging.getLogger("interlink.http").debug("GET /customers 200 (debug)")
            logging.getLogger("interlink.sync").info("page 1 committed (info)")
            logging.getLogger("interlink.sync").warning("a warning the console shows")
            other = threading.Thread(
                target=lambda: logging.getLogger("interlink.http").debug("another thread's")
            )
            other.start()
            other.join()
        return get_run_context().task_run.id  # type: ignore[union-attr]

    root.addHandler(kept)
    try:
        task_run_id = flow(lambda: noisy(str(project)), name="noisy-console")()
    finally:
        root.removeHandler(kept)
    on_console = [r.getMessage() for r in kept.records if r.name.startswith("interlink")]
    assert on_console == ["a warning the console shows"], on_console
    logs = task_run_logs(task_run_id)
    assert "interlink.http: GET /customers 200 (debug)" in logs, logs
    assert "interlink.sync: page 1 committed (info)" in logs
    assert not [line for line in logs if "another thread" in line]
    assert (interlink_logger.level, interlink_logger.propagate) == (level, propagate)


def test_a_child_logger_the_user_set_to_debug_still_prints(project):
    """The console keeps what the process configured: a logger set to DEBUG by the user
    prints its DEBUG lines during a task as before it."""
    root = logging.getLogger()
    kept = _Kept()
    chatty = logging.getLogger("interlink.oauth")
    chatty.setLevel(logging.DEBUG)

    @task
    def quiet(path: str) -> None:
        with forward_logs(load_project(path).redactor, level="INFO"):
            chatty.debug("token refreshed (the user asked for these)")
            logging.getLogger("interlink.sync").info("not on the console")

    root.addHandler(kept)
    try:
        flow(lambda: quiet(str(project)), name="chatty")()
    finally:
        root.removeHandler(kept)
        chatty.setLevel(logging.NOTSET)
    on_console = [r.getMessage() for r in kept.records if r.name.startswith("interlink")]
    assert on_console == ["token refreshed (the user asked for these)"], on_console


# -- errors that escape the run -----------------------------------------------------------------


def test_an_error_out_of_the_run_has_no_event_loop_noise_in_its_traceback():
    """Prefect prints a failed task's traceback: an error that escaped the run was shown
    'during handling of' a RuntimeError('no running event loop') that has nothing to do
    with it (asyncio.run was called inside an except block)."""

    async def boom() -> None:
        raise ValueError("the run's own error")

    with pytest.raises(ValueError) as caught:
        run_sync(boom)
    assert caught.value.__context__ is None, repr(caught.value.__context__)


# -- guards: attacks that found the behaviour right ---------------------------------------------


def test_a_prefect_timeout_records_the_run_cancelled_and_frees_its_lock(tmp_path):
    """`timeout_seconds` on the task: Prefect stops the run mid-read; interlink records it
    cancelled (its checkpoint kept), the lock is free, and the next run resumes."""
    fake = FakeSource(2000)
    fake.delay = 0.2
    with SandboxServer(fake.app()) as source:
        path = tmp_path / "interlink.yaml"
        pipelines = {"p": {"source": "src.items", "destination": "sql:items"}}
        path.write_text(
            yaml.safe_dump(config(source.url, f"sqlite:///{tmp_path / 'i.db'}", pipelines))
        )
        bounded = run_pipeline.with_options(timeout_seconds=1.0)

        @flow
        def sync() -> object:
            return bounded("p", config=str(path))

        state = sync(return_state=True)
        assert state.is_failed()
        (first,) = _runs(path)
        assert first["status"] == "cancelled" and first["read"] < 2000, first
        fake.delay = 0
        again = flow(lambda: run_pipeline("p", config=str(path)), name="after-timeout")()
    assert again.ok and again.run_id != first["id"]
    assert again.read + first["read"] == 2000, "resumed from the checkpoint"


def test_a_flow_run_stopped_by_sigterm_records_the_run_ended_and_frees_its_lock(tmp_path):
    """How Prefect cancels a deployed flow run: SIGTERM to its process. The interlink run
    is recorded (cancelled: the signal lands while the loop waits on the source), and the
    next run resumes from its checkpoint, the lock free."""
    fake = FakeSource(3000)
    fake.delay = 0.2
    with SandboxServer(fake.app()) as source:
        path = tmp_path / "interlink.yaml"
        pipelines = {"p": {"source": "src.items", "destination": "sql:items"}}
        path.write_text(
            yaml.safe_dump(config(source.url, f"sqlite:///{tmp_path / 'i.db'}", pipelines))
        )
        script = tmp_path / "nightly.py"
        script.write_text(
            "from prefect import flow\n"
            "from interlink.prefect import run_pipeline\n"
            f"flow(lambda: run_pipeline('p', config={str(path)!r}), name='nightly')()\n"
        )
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        process = subprocess.Popen(
            [sys.executable, str(script)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 90
            while not _read_some(path) and time.monotonic() < deadline:
                assert process.poll() is None, process.communicate()[1][-2000:]
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        (first,) = _runs(path)
        assert first["status"] == "cancelled", first
        fake.delay = 0
        again = flow(lambda: run_pipeline("p", config=str(path)), name="after-sigterm")()
    # The page the signal interrupted may have been read (counted in "read") and not yet
    # written: the next run reads it again from the checkpoint. What the first run wrote
    # ("created", counted once committed) and what the second read make the whole source.
    assert again.ok and again.read + first["created"] == 3000
    # At most the one page in flight: 100 records, or 95 after the first (each page after
    # it asks 5 records back, dropped as read already: connectors/_overlap.py).
    assert first["read"] - first["created"] in (0, 95, 100)
    with sqlite3.connect(tmp_path / "i.db") as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM items").fetchone() == (
            3000,
            3000,
        )


def _read_some(path: Path) -> bool:
    database = Path(str(load_project(path).config.database.url).removeprefix("sqlite:///"))
    if not database.exists():
        return False
    try:
        runs = _runs(path)
    except Exception:  # the database is being created
        return False
    return bool(runs) and runs[0]["read"] > 0


# Prefect's own API client leaves a socket to its server open when an async flow's loop
# ends (as in test_pipeline_task.py).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_async_flow_runs_two_pipelines_side_by_side_with_their_own_logs(project):
    """Two synchronous tasks submitted from an async flow, in threads at the same time:
    each task run's log holds its own pipeline's lines only."""

    @flow
    async def both() -> list[Any]:
        first = run_pipeline.submit("customer_list", config=str(project), log_level="DEBUG")
        second = run_pipeline.submit("orders", config=str(project), log_level="DEBUG")
        return [first.task_run_id, second.task_run_id, first.result(), second.result()]

    customers_run, orders_run, customers, orders = asyncio.run(both())
    assert customers.ok and orders.ok
    customers_log = "\n".join(task_run_logs(customers_run))
    orders_log = "\n".join(task_run_logs(orders_run))
    assert "/shop/customers" in customers_log and "/shop/orders" not in customers_log
    assert "/shop/orders" in orders_log and "/shop/customers" not in orders_log
