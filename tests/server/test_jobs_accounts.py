"""The jobs API for pipelines that act for connected accounts (issue 13): the submit body's
`account`, what it refuses, and the jobs the worker then runs, against the sandbox's
OAuth2 provider (acct_1001: 25 customers, acct_1002: 40) and a real SQLite file."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from interlink.client import AsyncJobsClient
from interlink.config import InterlinkConfig
from interlink.jobs import Queue, Scheduler, open_queue, run_worker
from interlink.sandbox import OAuthProvider, SandboxServer
from interlink.server import create_app
from interlink.store import Store, create_api_key, disable
from tests.connected_accounts import CUSTOMERS, connect, project, provider_server, revoke, rows

from .conftest import API, assert_error


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLINK_SECRET_KEY", Fernet.generate_key().decode())


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, SandboxServer]]:
    with provider_server() as running:
        yield running


@dataclass
class Service:
    config: InterlinkConfig
    store: Store
    queue: Queue
    http: httpx.AsyncClient
    transport: httpx.ASGITransport
    key: str

    async def submit(self, **body: Any) -> httpx.Response:
        return await self.http.post(
            f"{API}/jobs", json=body, headers={"Authorization": f"Bearer {self.key}"}
        )

    async def work(self) -> None:
        await run_worker(self.config, self.store, self.queue, burst=True, schedules=False)


@pytest.fixture
async def service(
    provider: tuple[OAuthProvider, SandboxServer], tmp_path: Path
) -> AsyncIterator[Service]:
    _, server = provider
    settings = project(
        f"sqlite:///{tmp_path / 'interlink.db'}",
        server.url,
        commerce_url="http://127.0.0.1:9",  # only submitted to, never run
        extra={"jobs": {"max_attempts": 1}},
    )
    settings["pipelines"]["customers"]["schedule"] = "* * * * *"
    settings["pipelines"]["commerce_copy"] = {  # a source without connected accounts
        "source": "commerce.customers",
        "destination": {"sql": "commerce_copy"},
    }
    config = InterlinkConfig.model_validate(settings)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    app = create_app(config, store=store, queue=queue, worker=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    http = httpx.AsyncClient(transport=transport, base_url="http://interlink.test")
    key = create_api_key(store.engine, "writer", "write").secret
    try:
        yield Service(config, store, queue, http, transport, key)
    finally:
        await http.aclose()
        queue.close()
        store.close()


async def test_a_job_runs_for_the_account_its_body_names(
    provider: tuple[OAuthProvider, SandboxServer], service: Service
) -> None:
    sandbox, _ = provider
    for account in CUSTOMERS:
        connect(service.store, sandbox, account)
    created = await service.submit(pipeline="customers", account="acct_1002")
    assert created.status_code == 202, created.text
    job_id = created.json()["data"]["job_id"]
    queued = service.queue.get(job_id)
    assert queued is not None
    assert queued.args == {"pipeline": "customers", "account": "acct_1002"}
    assert queued.lock == "pipeline:customers@acct_1002"

    await service.work()
    done = service.queue.get(job_id)
    assert done is not None and done.status == "completed", done
    assert done.result is not None and done.result["account"] == "acct_1002"
    assert done.result["counts"]["created"] == CUSTOMERS["acct_1002"]
    assert len(rows(service.store, "customers_acct_1002")) == CUSTOMERS["acct_1002"]
    assert [r["pipeline"] for r in service.store.runs()] == ["customers@acct_1002"]


async def test_a_job_for_every_account_lists_each_and_fails_when_one_did(
    provider: tuple[OAuthProvider, SandboxServer], service: Service
) -> None:
    sandbox, _ = provider
    for account in CUSTOMERS:
        connect(service.store, sandbox, account)
    created = await service.submit(pipeline="customers")  # the pipeline's account: '*'
    await service.work()
    done = service.queue.get(created.json()["data"]["job_id"])
    assert done is not None and done.status == "completed", done
    assert done.result is not None and done.result["status"] == "succeeded"
    listed = {a["account"]: a for a in done.result["accounts"]}
    assert sorted(listed) == ["acct_1001", "acct_1002"]
    assert listed["acct_1002"]["counts"]["created"] == CUSTOMERS["acct_1002"]

    gone = connect(service.store, sandbox, "acct_1001")  # a new grant, then revoked
    revoke(sandbox, gone)
    sandbox.advance(7200)  # every access token has expired: each run refreshes
    again = await service.submit(pipeline="customers", account="*", full_refresh=True)
    await service.work()
    failed = service.queue.get(again.json()["data"]["job_id"])
    assert failed is not None and failed.status == "failed", failed
    assert sandbox.stats.invalid_grants == 1, "acct_1001's refresh was really refused"
    assert failed.error is not None
    assert "1 of 2 accounts failed" in failed.error and "acct_1001" in failed.error
    assert failed.progress is not None
    statuses = {a["account"]: a["status"] for a in failed.progress["accounts"]}
    assert statuses == {"acct_1001": "failed", "acct_1002": "succeeded"}
    # needs_reauth cannot pass on a retry: the job failed at its first attempt.
    assert failed.attempts == 1 and "permanent" in failed.error

    # The runs API gives each account's runs under the pipeline's name.
    auth = {"Authorization": f"Bearer {service.key}"}
    listed_runs = (await service.http.get(f"{API}/runs?pipeline=customers", headers=auth)).json()
    assert {(r["pipeline"], r["account"]) for r in listed_runs["data"]} == {
        ("customers", "acct_1001"),
        ("customers", "acct_1002"),
    }
    one = await service.http.get(f"{API}/runs?pipeline=customers&account=acct_1002", headers=auth)
    assert [r["account"] for r in one.json()["data"]] == ["acct_1002"] * 2
    bad = await service.http.get(f"{API}/runs?account=../x", headers=auth)
    assert bad.status_code == 422


async def test_submit_refuses_what_cannot_run(
    provider: tuple[OAuthProvider, SandboxServer], service: Service
) -> None:
    sandbox, _ = provider
    connect(service.store, sandbox, "acct_1001")

    error = assert_error(
        await service.submit(pipeline="customers", account="no spaces"), 422, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == "account"
    # A well-formed name that cannot run here: the server's state says no (409).
    error = assert_error(
        await service.submit(pipeline="customers", account="acct_9"), 409, "CONFLICT"
    )
    assert error["details"][0]["field"] == "account"
    assert "connected: acct_1001" in error["message"]
    error = assert_error(
        await service.submit(pipeline="commerce_copy", account="acct_1001"), 409, "CONFLICT"
    )
    assert "only an oauth2 connection has connected accounts" in error["message"]
    with service.store.transaction() as conn:
        disable(conn, "provider", "acct_1001", reason="customer left")
    error = assert_error(
        await service.submit(pipeline="customers", account="acct_1001"),
        409,
        "CONNECTION_DISABLED",
    )
    assert "acct_1001" in error["message"] and "customer left" in error["message"]
    assert error["details"] == [
        {"field": "account", "issue": "account 'acct_1001' is switched off"}
    ]

    with service.store.transaction() as conn:
        disable(conn, "commerce", reason="migrating")
    error = assert_error(await service.submit(pipeline="to_commerce"), 409, "CONNECTION_DISABLED")
    assert "'commerce'" in error["message"] and error["details"][0]["field"] == "pipeline"
    with service.store.transaction() as conn:
        disable(conn, "provider")
    assert_error(await service.submit(pipeline="customers"), 409, "CONNECTION_DISABLED")
    assert service.queue.list() == []


async def test_the_python_client_sends_the_account(
    provider: tuple[OAuthProvider, SandboxServer], service: Service
) -> None:
    sandbox, _ = provider
    connect(service.store, sandbox, "acct_1001")
    async with AsyncJobsClient(
        "http://interlink.test", service.key, transport=service.transport
    ) as client:
        created = await client.submit_job("customers", account="acct_1001")
    job = service.queue.get(created["job_id"])
    assert job is not None and job.args == {"pipeline": "customers", "account": "acct_1001"}


async def test_a_schedule_runs_the_pipeline_for_its_configured_accounts(
    provider: tuple[OAuthProvider, SandboxServer], service: Service
) -> None:
    sandbox, _ = provider
    for account in CUSTOMERS:
        connect(service.store, sandbox, account)
    scheduler = Scheduler(service.config, service.store, service.queue)
    now = time.time()
    assert scheduler.tick(now) == []  # a new schedule starts counting
    [job] = scheduler.tick(now + 61)
    assert job.args == {"pipeline": "customers"}
    await service.work()
    done = service.queue.get(job.id)
    assert done is not None and done.status == "completed", done
    assert done.result is not None
    assert [a["account"] for a in done.result["accounts"]] == ["acct_1001", "acct_1002"]
    for account, count in CUSTOMERS.items():
        assert len(rows(service.store, f"customers_{account}")) == count
