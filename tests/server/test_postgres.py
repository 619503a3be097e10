"""The jobs API contract on PostgreSQL: jobs (Procrastinate queue), API keys, rate limits."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from interlink.store import list_api_keys, revoke_api_key
from tests.jobs.procrastinate_schema import fresh_schema

from .conftest import API, assert_error

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(postgres_url):
    with fresh_schema(postgres_url, "test_api") as url:
        yield url


@pytest.fixture
async def pg_api(make_api, pg_url):
    api = await make_api(
        database=pg_url,
        server={"rate_limits": {"POST /jobs": "5/min"}},
        jobs={"poll_interval": 0.05},
    )
    assert api.queue.backend == "postgresql"
    return api


async def test_jobs_contract_on_postgresql(pg_api):
    api = pg_api
    created = await api.post(
        "/jobs", json={"pipeline": "customers"}, headers={"Idempotency-Key": "pg-1"}
    )
    assert created.status_code == 202
    data = created.json()["data"]
    again = await api.post(
        "/jobs", json={"pipeline": "customers"}, headers={"Idempotency-Key": "pg-1"}
    )
    assert again.json()["data"]["job_id"] == data["job_id"]
    assert_error(
        await api.post("/jobs", json={"pipeline": "stock"}, headers={"Idempotency-Key": "pg-1"}),
        409,
        "CONFLICT",
    )
    others = [
        (await api.post("/jobs", json=body)).json()["data"]["job_id"]
        for body in ({"pipeline": "stock"}, {"kind": "noop"})
    ]
    job = (await api.client.get(data["status_url"], headers=api.auth("read"))).json()["data"]
    assert job["status"] == "queued" and job["pipeline"] == "customers"

    first = (await api.get("/jobs", params={"limit": 2})).json()
    assert [j["id"] for j in first["data"]] == sorted(others, reverse=True)
    params = {"limit": 2, "before": first["meta"]["next_before"]}
    rest = (await api.get("/jobs", params=params)).json()
    assert [j["id"] for j in rest["data"]] == [data["job_id"]]
    assert rest["meta"]["next_before"] is None
    stock = (await api.get("/jobs", params={"pipeline": "stock"})).json()["data"]
    assert [j["id"] for j in stock] == [others[0]]

    cancelled = await api.post(f"/jobs/{others[0]}/cancel", scope="write")
    assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled"
    assert_error(await api.post(f"/jobs/{others[0]}/cancel"), 409, "CONFLICT")
    assert_error(await api.get("/jobs/424242"), 404, "NOT_FOUND")

    # Five POSTs of this key so far (a replay and a refused one count too): the sixth waits.
    refused = await api.post("/jobs", json={"kind": "noop"})
    assert_error(refused, 429, "RATE_LIMITED")
    assert (
        refused.headers["ratelimit-policy"] == "5;w=60" and int(refused.headers["retry-after"]) >= 1
    )
    assert (await api.post("/jobs", json={"kind": "noop"}, scope="write")).status_code == 202

    async with api.app.router.lifespan_context(api.app):
        pass  # no worker: the lifespan only opens and closes
    health = (await api.client.get(f"{API}/health")).json()["data"]
    assert health["database"] == {"backend": "postgresql", "reachable": True}


async def test_api_keys_on_postgresql(pg_api):
    api = pg_api
    assert_error(await api.client.get(f"{API}/jobs"), 401, "UNAUTHORIZED")
    assert_error(await api.post("/jobs", json={"kind": "noop"}, scope="read"), 403, "FORBIDDEN")
    assert (await api.get("/jobs", scope="read")).status_code == 200
    read_key = next(k for k in list_api_keys(api.store.engine) if k.scope == "read")
    revoke_api_key(api.store.engine, read_key.id)
    assert_error(await api.get("/jobs", scope="read"), 401, "UNAUTHORIZED")

    dump = []
    with api.store.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            dump += [str(tuple(row)) for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))]
    text = "\n".join(dump)
    assert read_key.prefix in text  # the dump is real: the prefix is there, the key is not
    for secret in api.keys.values():
        assert secret not in text and secret.split("_")[2] not in text


async def test_the_embedded_worker_runs_jobs_on_postgresql(make_api, pg_url):
    api = await make_api(
        database=pg_url,
        worker=True,
        jobs={"poll_interval": 0.05},
        server={"rate_limits": {"default": "100000/min"}},
    )
    # Submitted before the worker starts: a job committed while a worker's fetch statement
    # is under way can be dead-lettered by ProcrastinateQueue (reported to the queue's owner).
    job_id = (await api.post("/jobs", json={"kind": "noop"})).json()["data"]["job_id"]
    async with api.app.router.lifespan_context(api.app):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            job = (await api.get(f"/jobs/{job_id}")).json()["data"]
            if job["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        assert job["status"] == "completed", job
