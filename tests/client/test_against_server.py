"""Both clients and the CLI against the real jobs API: `create_app` served by uvicorn on a
free local port, on a temporary SQLite database, with its embedded worker running jobs, and
a sandbox shop as the pipelines' source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from interlink.cli.main import app as cli_app
from interlink.client import AsyncJobsClient, JobNotFoundApiError, JobsClient
from interlink.errors import AuthError, ForbiddenError, RateLimitedError, RequestRejectedError
from interlink.http import RetryPolicy
from interlink.sandbox import SandboxServer
from interlink.server import create_app
from interlink.store import Store, create_api_key
from tests.slow_shop import customers_config, slow_shop

FAST: dict[str, Any] = {"poll_interval": 0.02, "max_interval": 0.1, "timeout": 30}


@dataclass
class Served:
    url: str
    store: Store

    def new_key(self, name: str, scope: str = "write") -> str:
        return create_api_key(self.store.engine, name, scope).secret  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    with slow_shop(2000) as shop:
        config = customers_config(
            f"sqlite:///{tmp_path_factory.mktemp('api') / 'interlink.db'}",
            shop.url,
            server={"rate_limits": {"POST /jobs": "6/min", "default": "10000/min"}},
        )
        store = Store.open(config.database)
        try:
            with SandboxServer(create_app(config, store=store, worker=True)) as api:
                yield Served(api.url, store)
        finally:
            store.close()


def test_sync_client_end_to_end(served):
    with JobsClient(served.url, served.new_key("sync")) as client:
        health = client.health()
        assert health["status"] == "ok" and health["worker"] == "running"
        assert [p["name"] for p in client.list_pipelines()] == ["customers"]

        noop = client.submit_job(None, kind="noop", idempotency_key="noop-once")
        again = client.submit_job(None, kind="noop", idempotency_key="noop-once")
        assert again["job_id"] == noop["job_id"]
        assert noop["status_url"] == f"/api/v1/jobs/{noop['job_id']}"
        assert client.wait_for_job(noop["job_id"], **FAST)["status"] == "completed"

        run = client.submit_job("customers", limit=20, dry_run=True)
        done = client.wait_for_job(run["job_id"], **FAST)
        assert done["status"] == "completed", done
        assert done["result"]["counts"]["read"] == 20
        assert client.get_run(done["result"]["run_id"])["pipeline"] == "customers"
        assert client.list_runs(pipeline="customers")[0]["id"] == done["result"]["run_id"]

        long_run = client.submit_job("customers")
        cancelled = client.cancel_job(long_run["job_id"])
        assert cancelled["cancel_requested"] or cancelled["status"] == "cancelled"
        assert client.wait_for_job(long_run["job_id"], **FAST)["status"] == "cancelled"
        with pytest.raises(RequestRejectedError) as conflict:
            client.cancel_job(long_run["job_id"])
        assert conflict.value.error_code == "CONFLICT" and conflict.value.status_code == 409
        assert conflict.value.request_id and conflict.value.request_id.startswith("req_")

        first = client.list_jobs(limit=1)
        assert len(first) == 1 and first.next_before == first.items[0]["id"]
        ids = [job["id"] for job in client.iter_jobs(page_size=1)]
        assert ids == sorted({noop["job_id"], run["job_id"], long_run["job_id"]}, reverse=True)
        assert [j["id"] for j in client.iter_jobs(status="cancelled")] == [long_run["job_id"]]

        with pytest.raises(JobNotFoundApiError) as missing:
            client.get_job(10**9)
        assert missing.value.job_id == 10**9 and missing.value.error_code == "NOT_FOUND"


async def test_async_client_end_to_end(served):
    async with AsyncJobsClient(served.url, served.new_key("async")) as client:
        submitted = await client.submit_job(None, kind="noop")
        job = await client.wait_for_job(submitted["job_id"], **FAST)
        assert job["status"] == "completed" and job["kind"] == "noop"
        run = await client.submit_job("customers", limit=10, dry_run=True)
        seen: list[str] = []
        done = await client.wait_for_job(
            run["job_id"], on_update=lambda j: seen.append(j["status"]), **FAST
        )
        assert done["status"] == "completed" and seen[-1] == "completed"
        listed = [j["id"] async for j in client.iter_jobs(kind="noop", page_size=1)]
        assert submitted["job_id"] in listed
        with pytest.raises(JobNotFoundApiError):
            await client.cancel_job(10**9)


def test_validation_errors_come_with_their_details(served):
    with JobsClient(served.url, served.new_key("validation")) as client:
        with pytest.raises(RequestRejectedError) as caught:
            client.submit_job("no_such_pipeline")
    error = caught.value
    assert error.status_code == 422 and error.error_code == "VALIDATION_ERROR"
    assert [d["field"] for d in error.details] == ["pipeline"]
    assert "pipeline: no pipeline named 'no_such_pipeline'" in str(error)


def test_a_wrong_key_and_a_read_only_key(served):
    with JobsClient(served.url, "il_wrongkey_0000000000") as client:
        with pytest.raises(AuthError) as caught:
            client.list_jobs()
    assert caught.value.error_code == "UNAUTHORIZED"
    assert "il_wrongkey_0000000000" not in str(caught.value) + repr(caught.value)
    with JobsClient(served.url, served.new_key("reader", "read")) as reader:
        assert isinstance(reader.list_jobs().items, list)
        with pytest.raises(ForbiddenError) as forbidden:
            reader.submit_job(None, kind="noop")
    assert forbidden.value.error_code == "FORBIDDEN" and forbidden.value.status_code == 403


def test_429_is_raised_with_retry_after_when_too_long_to_sleep(served):
    # Do not sleep any Retry-After: the error must say how long to wait instead.
    policy = RetryPolicy(max_retry_after=0.0)
    with JobsClient(served.url, served.new_key("limited"), retry_policy=policy) as client:
        for _ in range(6):
            client.submit_job(None, kind="noop")
        with pytest.raises(RateLimitedError) as caught:
            client.submit_job(None, kind="noop")
    error = caught.value
    assert error.status_code == 429 and error.error_code == "RATE_LIMITED"
    assert error.retry_after is not None and 0 < error.retry_after <= 60


def test_the_cli_against_the_server(served, monkeypatch):
    monkeypatch.setenv("INTERLINK_URL", served.url)
    monkeypatch.setenv("INTERLINK_API_KEY", served.new_key("cli"))
    runner = CliRunner()
    submitted = runner.invoke(
        cli_app, ["jobs", "submit", "customers", "--limit", "5", "--dry-run", "--wait"]
    )
    assert submitted.exit_code == 0, submitted.output
    assert "completed" in submitted.output
    listed = runner.invoke(cli_app, ["jobs", "list", "--limit", "1", "--json"])
    assert listed.exit_code == 0, listed.output
    job_id = json.loads(listed.stdout)["items"][0]["id"]
    status = runner.invoke(cli_app, ["jobs", "status", str(job_id)])
    assert status.exit_code == 0 and f"Job {job_id}" in status.output
    cancel = runner.invoke(cli_app, ["jobs", "cancel", str(job_id)])
    assert cancel.exit_code == 2 and "409" in cancel.stderr and "already finished" in cancel.stderr
    missing = runner.invoke(cli_app, ["jobs", "wait", "999999"])
    assert missing.exit_code == 2 and "404" in missing.stderr
