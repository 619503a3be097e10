"""GET /pipelines, /runs, /runs/{id}, /apps/{name}/status and /health."""

from __future__ import annotations

from interlink.store import COUNTERS

from .conftest import API, assert_error, assert_meta


def _record_run(api, pipeline, status="succeeded", **counts):
    run_id = api.store.begin_run(pipeline)
    api.store.finish_run(
        pipeline,
        run_id,
        status=status,
        counts={name: counts.get(name, 0) for name in COUNTERS},
        errors=[],
    )
    return run_id


async def test_pipelines_show_source_destination_schedule_and_last_run(api):
    _record_run(api, "customers", read=10, created=10)
    last = _record_run(api, "customers", read=3, updated=3)
    response = await api.get("/pipelines", scope="read")
    body = response.json()
    assert_meta(body, response)
    by_name = {p["name"]: p for p in body["data"]}
    assert set(by_name) == {"customers", "customers_copy", "stock"}
    customers = by_name["customers"]
    assert customers["source"] == "shop.customers"
    assert customers["destination"] == "sql:customers" and customers["write"] == "merge"
    assert customers["schedule"] is None and by_name["customers_copy"]["schedule"] == "@daily"
    assert customers["last_run"]["id"] == last
    assert customers["last_run"]["counts"]["read"] == 3
    assert customers["last_run"]["counts"]["updated"] == 3
    assert by_name["stock"]["last_run"] is None


async def test_pipelines_count_the_failed_records_they_owe(api):
    """Records that failed and are not written yet, every account's summed."""
    run_id = api.store.begin_run("customers")
    with api.store.begin() as conn:
        api.store.owe(conn, "customers", run_id, [("7", "map", "E: x"), ("9", "write", "E: y")])
        api.store.owe(conn, "customers@acme", run_id, [("7", "map", "E: x")])
        api.store.owe(conn, "stock", run_id, [("1", "fetch", "NotFoundError: 404")])
    body = (await api.get("/pipelines", scope="read")).json()
    by_name = {p["name"]: p["failed_records"] for p in body["data"]}
    assert by_name == {"customers": 3, "customers_copy": 0, "stock": 1}


async def test_runs_are_paginated_and_filtered(api):
    ids = [_record_run(api, "customers" if i % 2 else "stock", read=i) for i in range(5)]
    page = (await api.get("/runs", params={"limit": 2})).json()
    assert [r["id"] for r in page["data"]] == ids[::-1][:2]
    assert page["meta"]["next_before"] == ids[3]
    rest = (await api.get("/runs", params={"limit": 10, "before": ids[3]})).json()
    assert [r["id"] for r in rest["data"]] == ids[::-1][2:]
    assert rest["meta"]["next_before"] is None
    only = (await api.get("/runs", params={"pipeline": "customers"})).json()
    assert [r["id"] for r in only["data"]] == [ids[3], ids[1]]

    one = await api.get(f"/runs/{ids[2]}", scope="read")
    run = one.json()["data"]
    assert run["pipeline"] == "stock" and run["status"] == "succeeded"
    assert run["counts"] == {name: (2 if name == "read" else 0) for name in COUNTERS}
    assert "owner" not in run
    assert_error(await api.get("/runs/9999"), 404, "NOT_FOUND")


async def test_app_status_shows_the_connection_without_secrets(api):
    _record_run(api, "stock", read=4)
    queued = await api.post("/jobs", json={"pipeline": "stock"})
    assert queued.status_code == 202
    response = await api.get("/apps/warehouse/status", scope="read")
    status = response.json()["data"]
    assert status["name"] == "warehouse"
    assert "hunter2" not in response.text and "sekrit-value" not in response.text
    assert (
        status["base_url"].startswith("https://ops:")
        and "warehouse.example/api" in status["base_url"]
    )
    assert status["auth"] == "none"
    assert status["resources"] == ["warehouse.stock"]
    assert [(p["name"], p["role"]) for p in status["pipelines"]] == [("stock", "source")]
    assert status["pipelines"][0]["last_run"]["counts"]["read"] == 4
    assert status["jobs"] == {"queued": 1, "running": 0}

    shop = (await api.get("/apps/shop/status")).json()["data"]
    assert {p["name"] for p in shop["pipelines"]} == {"customers", "customers_copy"}
    assert shop["auth"] == "bearer"
    assert "server-shop-token" not in str(shop)
    error = assert_error(await api.get("/apps/nope/status"), 404, "NOT_FOUND")
    assert "nope" in error["message"]


async def test_health_reports_database_queue_worker_and_version(api):
    from interlink._version import __version__

    await api.post("/jobs", json={"kind": "noop"})
    response = await api.client.get(f"{API}/health")
    assert response.status_code == 200
    body = response.json()
    assert_meta(body, response)
    health = body["data"]
    assert health["status"] == "ok" and health["version"] == __version__
    assert health["database"] == {"backend": "sqlite", "reachable": True}
    assert health["queue"]["queued"] == 1 and health["worker"] == "off"
