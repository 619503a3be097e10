"""POST/GET /jobs, /jobs/{id} and cancel: the contract users and the client rely on."""

from __future__ import annotations

import sqlalchemy as sa

from interlink.store import jobs

from .conftest import API, assert_error, assert_meta


async def test_submit_answers_202_with_status_url_and_the_job_is_queued(api):
    response = await api.post("/jobs", json={"pipeline": "customers"}, scope="write")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "success" and set(body) == {"status", "data", "meta"}
    assert_meta(body, response)
    data = body["data"]
    assert data == {
        "job_id": data["job_id"],
        "status": "queued",
        "status_url": f"{API}/jobs/{data['job_id']}",
    }
    assert response.headers["location"] == data["status_url"]

    shown = await api.client.get(data["status_url"], headers=api.auth("read"))
    assert shown.status_code == 200
    job = shown.json()["data"]
    assert job["id"] == data["job_id"] and job["status"] == "queued"
    assert job["kind"] == "pipeline.run" and job["pipeline"] == "customers"
    assert job["args"] == {"pipeline": "customers"}
    assert {"progress", "result", "error", "attempts", "created_at"} <= set(job)


async def test_submit_options_reach_the_job(api):
    body = {"pipeline": "customers", "full_refresh": True, "dry_run": True, "limit": 5}
    created = await api.post("/jobs", json={**body, "priority": 7})
    job = (await api.get(f"/jobs/{created.json()['data']['job_id']}")).json()["data"]
    assert job["args"] == body and job["priority"] == 7
    noop = await api.post("/jobs", json={"kind": "noop"})
    assert noop.status_code == 202
    job = (await api.get(f"/jobs/{noop.json()['data']['job_id']}")).json()["data"]
    assert job["kind"] == "noop" and job["pipeline"] is None


async def test_unknown_or_missing_pipeline_is_a_validation_error_on_that_field(api):
    error = assert_error(
        await api.post("/jobs", json={"pipeline": "nope"}), 422, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == "pipeline"
    assert "nope" in error["details"][0]["issue"] and "customers" in error["details"][0]["issue"]
    # Neither the guide's `config` nor `pipeline`: the guide's 400 INVALID_REQUEST.
    error = assert_error(await api.post("/jobs", json={}), 400, "INVALID_REQUEST")
    assert error["details"][0]["field"] == "config"
    assert (await api.get("/jobs")).json()["data"] == []


async def test_bad_fields_are_reported_one_by_one(api):
    response = await api.post(
        "/jobs",
        json={"pipeline": "customers", "limit": 0, "priority": "high", "dry_run": "yes", "x": 1},
    )
    error = assert_error(response, 422, "VALIDATION_ERROR")
    fields = {detail["field"] for detail in error["details"]}
    assert fields == {"limit", "priority", "dry_run", "x"}
    assert all(detail["issue"] for detail in error["details"])
    error = assert_error(
        await api.post("/jobs", json={"kind": "report.email"}), 422, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == "kind"
    error = assert_error(await api.post("/jobs", json=[1, 2]), 422, "VALIDATION_ERROR")


async def test_idempotency_key_gives_back_the_same_job(api):
    headers = {"Idempotency-Key": "order-42"}
    first = await api.post("/jobs", json={"pipeline": "customers"}, headers=headers)
    again = await api.post("/jobs", json={"pipeline": "customers"}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["data"] == again.json()["data"]
    # Another key's identical Idempotency-Key is its own: keys never share jobs.
    other = await api.post("/jobs", json={"pipeline": "customers"}, headers=headers, scope="write")
    assert other.json()["data"]["job_id"] != first.json()["data"]["job_id"]
    # The same key for a different job is refused rather than silently ignored.
    error = assert_error(
        await api.post("/jobs", json={"pipeline": "stock"}, headers=headers), 409, "CONFLICT"
    )
    assert error["details"][0]["field"] == "Idempotency-Key"
    assert len((await api.get("/jobs")).json()["data"]) == 2
    bad = await api.post(
        "/jobs", json={"pipeline": "customers"}, headers={"Idempotency-Key": "a b"}
    )
    assert assert_error(bad, 422, "VALIDATION_ERROR")["details"][0]["field"] == "Idempotency-Key"


async def _submit(api, count, **body):
    ids = []
    for _ in range(count):
        response = await api.post("/jobs", json=body)
        assert response.status_code == 202, response.text
        ids.append(response.json()["data"]["job_id"])
    return ids


async def test_list_is_newest_first_with_a_cursor_and_filters(make_api):
    api = await make_api(server={"rate_limits": {"POST /jobs": "100/min"}})
    customers = await _submit(api, 4, pipeline="customers")
    stock = await _submit(api, 2, pipeline="stock")
    noop = await _submit(api, 1, kind="noop")
    everything = sorted(customers + stock + noop, reverse=True)

    seen, before, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"before": before} if before else {})
        response = await api.get("/jobs", params=params)
        body = response.json()
        assert_meta(body, response)
        assert body["meta"]["limit"] == 3
        seen += [job["id"] for job in body["data"]]
        pages += 1
        before = body["meta"]["next_before"]
        if before is None:
            break
    assert seen == everything and pages == 3

    async def ids(**params):
        return [job["id"] for job in (await api.get("/jobs", params=params)).json()["data"]]

    assert await ids(pipeline="customers") == sorted(customers, reverse=True)
    assert await ids(kind="noop") == noop
    await api.post(f"/jobs/{stock[0]}/cancel")
    assert await ids(status="cancelled") == [stock[0]]
    assert await ids(status="queued", pipeline="stock") == [stock[1]]
    assert await ids(pipeline="nothing_here") == []
    assert_error(await api.get("/jobs", params={"status": "lost"}), 422, "VALIDATION_ERROR")
    assert_error(await api.get("/jobs", params={"before": 0}), 422, "VALIDATION_ERROR")


async def test_limit_is_clamped_to_1_to_100(api):
    await _submit(api, 2, kind="noop")
    big = (await api.get("/jobs", params={"limit": 10**6})).json()
    assert big["meta"]["limit"] == 100 and len(big["data"]) == 2
    small = (await api.get("/jobs", params={"limit": -5})).json()
    assert small["meta"]["limit"] == 1 and len(small["data"]) == 1
    assert small["meta"]["next_before"] == small["data"][0]["id"]


async def test_unknown_job_is_404_and_a_bad_id_422(api):
    error = assert_error(await api.get("/jobs/999"), 404, "NOT_FOUND")
    assert "999" in error["message"]
    assert_error(await api.post("/jobs/999/cancel"), 404, "NOT_FOUND")
    error = assert_error(await api.get("/jobs/abc"), 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "job_id"
    assert_error(await api.get(f"/jobs/{2**70}"), 422, "VALIDATION_ERROR")


def _set_status(api, job_id, status):
    with api.store.engine.begin() as conn:
        conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(status=status))


async def test_cancel_queued_running_and_finished_jobs(api):
    queued, running, done = await _submit(api, 3, kind="noop")
    _set_status(api, running, "running")
    _set_status(api, done, "completed")

    response = await api.post(f"/jobs/{queued}/cancel", scope="write")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "cancelled"

    response = await api.post(f"/jobs/{running}/cancel", scope="write")
    assert response.status_code == 200
    job = response.json()["data"]
    assert job["status"] == "running" and job["cancel_requested"] is True

    error = assert_error(await api.post(f"/jobs/{done}/cancel"), 409, "CONFLICT")
    assert "completed" in error["message"]
    # Cancelled is finished too: a second cancel conflicts.
    assert_error(await api.post(f"/jobs/{queued}/cancel"), 409, "CONFLICT")
