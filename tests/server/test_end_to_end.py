"""POST /jobs for a real pipeline against the sandbox, run by the embedded worker."""

from __future__ import annotations

import asyncio
import time

import pytest

from interlink.sandbox import SandboxServer, create_shop_app

from .conftest import API, SHOP_TOKEN

RECORDS = 230


@pytest.fixture(scope="module")
def shop():
    with SandboxServer(create_shop_app(records=RECORDS, seed=5, token=SHOP_TOKEN)) as server:
        yield server


async def _wait_done(api, url, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await api.client.get(url, headers=api.auth("read"))).json()["data"]
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job not finished after {timeout} s: {job}")


async def test_a_submitted_pipeline_runs_in_the_embedded_worker(make_api, shop):
    api = await make_api(shop_url=shop.url, worker=True, jobs={"concurrency": 2})
    async with api.app.router.lifespan_context(api.app):
        health = (await api.client.get(f"{API}/health")).json()["data"]
        assert health["worker"] == "running"

        submitted = await api.post("/jobs", json={"pipeline": "customers"}, scope="write")
        assert submitted.status_code == 202
        job = await _wait_done(api, submitted.json()["data"]["status_url"])
        assert job["status"] == "completed", job
        result = job["result"]
        assert result["status"] == "succeeded"
        assert result["counts"]["read"] == RECORDS and result["counts"]["created"] == RECORDS
        assert job["attempts"] == 1 and job["finished_at"] >= job["started_at"]

        run = (await api.get(f"/runs/{result['run_id']}")).json()["data"]
        assert run["pipeline"] == "customers" and run["counts"]["created"] == RECORDS
        pipelines = {p["name"]: p for p in (await api.get("/pipelines")).json()["data"]}
        assert pipelines["customers"]["last_run"]["id"] == result["run_id"]
        app = (await api.get("/apps/shop/status")).json()["data"]
        assert app["jobs"] == {"queued": 0, "running": 0}

        # A second run is incremental: nothing new to create.
        again = await api.post("/jobs", json={"pipeline": "customers"})
        second = await _wait_done(api, again.json()["data"]["status_url"])
        assert second["status"] == "completed"
        assert second["result"]["counts"]["created"] == 0
    assert (await api.client.get(f"{API}/health")).json()["data"]["worker"] == "stopped"
