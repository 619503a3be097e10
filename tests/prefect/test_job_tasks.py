"""The job tasks against a real `interlink serve` app (uvicorn on a local port, its
embedded worker running the jobs on an SQLite file), the sandbox as the source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from interlink.prefect import (
    PipelineRunError,
    RunCounts,
    load_project,
    run_job,
    submit_job,
    wait_for_job,
)
from interlink.sandbox import SandboxServer
from interlink.server import create_app
from interlink.store import Store, create_api_key
from prefect import flow

from .conftest import flow_run_artifacts

FAST: dict[str, Any] = {"poll_interval": 0.05, "max_interval": 0.2, "timeout": 60}


@dataclass
class Server:
    url: str
    key: str
    store: Store


@pytest.fixture
def server(project) -> Iterator[Server]:
    config = load_project(project).config
    store = Store.open(config.database)
    try:
        key = create_api_key(store.engine, "prefect", "write").secret
        assert key is not None
        with SandboxServer(create_app(config, store=store, worker=True)) as api:
            yield Server(api.url, key, store)
    finally:
        store.close()


def test_run_job_submits_waits_and_returns_the_counts(server):
    @flow
    def remote() -> RunCounts:
        return run_job("customer_list", server_url=server.url, api_key=server.key, **FAST)

    counts = remote()
    assert isinstance(counts, RunCounts) and counts.ok
    assert counts.job_id is not None and counts.read == counts.created == 120
    assert server.store.runs("customer_list")[0]["id"] == counts.run_id


def test_submit_and_wait_as_two_tasks_with_the_server_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("INTERLINK_URL", server.url)
    monkeypatch.setenv("INTERLINK_API_KEY", server.key)

    @flow
    def remote() -> RunCounts:
        job_id = submit_job("orders", full_refresh=True)
        return wait_for_job(job_id, **FAST)

    state = remote(return_state=True)
    counts = state.result()
    assert counts.ok and counts.pipeline == "orders" and counts.created > 120
    (row,) = flow_run_artifacts(state.state_details.flow_run_id)["interlink-orders"]
    assert row["status"] == "succeeded" and row["created"] == counts.created


def test_a_failed_job_fails_the_task_with_the_jobs_error(server):
    @flow
    def remote() -> RunCounts:
        return run_job("broken", server_url=server.url, api_key=server.key, **FAST)

    state = remote(return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PipelineRunError), error
    assert error.counts.status == "failed" and error.counts.job_id is not None
    assert f"job {error.counts.job_id}: " in str(error) and "404" in str(error), str(error)


def test_no_server_or_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("INTERLINK_URL", raising=False)
    monkeypatch.delenv("INTERLINK_API_KEY", raising=False)
    with pytest.raises(ValueError, match="no server: pass server_url or set INTERLINK_URL"):
        submit_job.fn("orders")
    with pytest.raises(ValueError, match="no API key: pass api_key or set INTERLINK_API_KEY"):
        submit_job.fn("orders", server_url="http://127.0.0.1:9")
