"""A small fake jobs API for `httpx.MockTransport`, and fake time.

`FakeApi` answers like interlink's server (envelopes, Idempotency-Key, cursors, 409 on a
finished job, 401 on a wrong key); `api.script` queues answers (responses or exceptions)
that are returned before routing, to stage failures.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

API_KEY = "il_test_5ecret_key_0123456789"
BASE = "http://jobs.test"


def meta(request_id: str = "req_test") -> dict[str, Any]:
    return {"timestamp": "2025-11-24T10:30:00Z", "request_id": request_id}


def ok(data: Any, status: int = 200, **extra_meta: Any) -> httpx.Response:
    return httpx.Response(
        status,
        json={"status": "success", "data": data, "meta": {**meta(), **extra_meta}},
        headers={"X-Request-ID": "req_test"},
    )


def err(
    status: int,
    code: str,
    message: str = "it went wrong",
    *,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str = "req_err",
) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "status": "error",
            "error": {"code": code, "message": message, "details": details or []},
            "meta": meta(request_id),
        },
        headers={"X-Request-ID": request_id, **(headers or {})},
    )


def job(job_id: int, status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "kind": "pipeline.run",
        "pipeline": "customers",
        "args": {"pipeline": "customers"},
        "status": status,
        "priority": 0,
        "attempts": 0,
        "max_attempts": 3,
        "created_at": 1_764_000_000.0,
        "run_at": 1_764_000_000.0,
        "started_at": None,
        "finished_at": None,
        "cancel_requested": False,
        "progress": None,
        "result": None,
        "error": None,
        **fields,
    }


class FakeApi:
    """The jobs API as a MockTransport handler."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: list[httpx.Response | Exception] = []
        self.jobs: dict[int, dict[str, Any]] = {}
        self.keys: dict[str, int] = {}
        self.statuses: dict[int, list[str]] = {}
        """Per job, the statuses the next GETs report, one per poll (the last one stays)."""

    def add_jobs(self, count: int, **fields: Any) -> None:
        for _ in range(count):
            new_id = max(self.jobs, default=0) + 1
            self.jobs[new_id] = job(new_id, **fields)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            item = self.script.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return err(401, "UNAUTHORIZED", "invalid or missing API key")
        return self.route(request)

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        method = request.method
        if method == "POST" and path == "/jobs":
            return self.submit(request)
        if method == "GET" and path == "/jobs":
            return self.list(request)
        if match := re.fullmatch(r"/jobs/(\d+)", path):
            return self.get(int(match[1]))
        if method == "POST" and (match := re.fullmatch(r"/jobs/(\d+)/cancel", path)):
            return self.cancel(int(match[1]))
        if path == "/pipelines":
            return ok([{"name": "customers"}, {"name": "orders"}])
        if path == "/runs":
            return ok([{"id": 2, "pipeline": "customers"}, {"id": 1, "pipeline": "orders"}])
        if path == "/runs/2":
            return ok({"id": 2, "pipeline": "customers", "status": "completed"})
        if path == "/health":
            return ok({"status": "ok"})
        if path == "/apps/validator/status":
            return ok({"name": "validator", "status": "running"})
        return err(404, "NOT_FOUND", f"no route {path}")

    def submit(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        key = request.headers.get("idempotency-key")
        if key in self.keys:
            job_id = self.keys[key]
        else:
            job_id = max(self.jobs, default=0) + 1
            self.jobs[job_id] = job(job_id, pipeline=body["pipeline"], args=body)
            if key:
                self.keys[key] = job_id
        data = {"job_id": job_id, "status": "queued", "status_url": f"/api/v1/jobs/{job_id}"}
        return ok(data, status=202)

    def get(self, job_id: int) -> httpx.Response:
        if job_id not in self.jobs:
            return err(404, "NOT_FOUND", f"job {job_id} not found")
        queue = self.statuses.get(job_id)
        if queue:
            status = queue.pop(0) if len(queue) > 1 else queue[0]
            self.jobs[job_id]["status"] = status
            self.jobs[job_id]["progress"] = {"counts": {"read": 10 * len(self.requests)}}
        return ok(self.jobs[job_id])

    def list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = int(params.get("limit", "50"))
        before = int(params["before"]) if "before" in params else None
        ids = sorted(self.jobs, reverse=True)
        if before is not None:
            ids = [i for i in ids if i < before]
        if "status" in params:
            ids = [i for i in ids if self.jobs[i]["status"] == params["status"]]
        page = ids[:limit]
        more = len(ids) > limit
        return ok([self.jobs[i] for i in page], next_before=page[-1] if more else None)

    def cancel(self, job_id: int) -> httpx.Response:
        if job_id not in self.jobs:
            return err(404, "NOT_FOUND", f"job {job_id} not found")
        if self.jobs[job_id]["status"] in {"completed", "failed", "cancelled"}:
            return err(409, "CONFLICT", f"job {job_id} has already finished")
        self.jobs[job_id].update(status="cancelled", cancel_requested=True)
        return ok(self.jobs[job_id])


class FakeTime:
    """A monotonic clock and a wall clock that only the fake sleeps move."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wall_start = 1_800_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.wall_start + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def no_jitter(ceiling: float) -> float:
    return ceiling
