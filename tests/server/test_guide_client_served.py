"""A client written to the console guide, unchanged in shape, against `interlink serve`.

`GuideClient` below is the guide's client in our words, on httpx instead of requests:
a session with the bearer key, `submit_job(config)` posting `{"config": config}`,
`wait_for_job` polling until `completed` or `failed` (TimeoutError after `timeout`), and
its retry rule: three attempts, again after a 5xx answer or a connection error, waiting
`backoff * 2 ** attempt` between them (the guide waits 2 ** attempt seconds).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlink.client import JobsClient, JobWaitTimeoutError, WaitPlan
from interlink.errors import JobTimeoutError
from interlink.sandbox import SandboxServer, create_shop_app
from interlink.store import Store, create_api_key

from .conftest import SHOP_TOKEN
from .serving import serve_process

RECORDS = 120


class GuideClient:
    def __init__(
        self, base_url: str, api_key: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url
        self.session = httpx.Client(transport=transport, timeout=10)
        self.session.headers.update(
            {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        )
        self.backoff = 0.01
        self.poll = 0.1

    def __enter__(self) -> GuideClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def submit_job(self, config: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/api/v1/jobs", json={"config": config})["data"]

    def get_job_status(self, job_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/jobs/{job_id}")["data"]

    def wait_for_job(self, job_id: int, timeout: float = 300) -> dict[str, Any]:
        started = time.time()
        while time.time() - started < timeout:
            status = self.get_job_status(job_id)
            if status["status"] in ("completed", "failed"):
                return status
            time.sleep(self.poll)
        raise TimeoutError(f"Job {job_id} did not complete in {timeout}s")

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        attempts = 3
        for attempt in range(attempts):
            try:
                response = self.session.request(method, self.base_url + path, **kwargs)
                response.raise_for_status()
                return response.json()
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code >= 500 and attempt < attempts - 1:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                raise
            except httpx.RequestError:
                if attempt < attempts - 1:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                raise
        raise AssertionError("unreachable")


class Faults(httpx.BaseTransport):
    """Real HTTP, except for the faults queued per method: "refuse" (a connection error
    before sending), "503" (a 5xx answer before sending), "lose" (sent and answered by the
    server, then the answer lost)."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.queued: dict[str, list[str]] = {}
        self.fired: list[str] = []
        self.sent: list[httpx.Request] = []

    def close(self) -> None:
        self.real.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        faults = self.queued.get(request.method, [])
        fault = faults.pop(0) if faults else None
        if fault is not None:
            self.fired.append(fault)
        if fault == "refuse":
            raise httpx.ConnectError("refused (injected)", request=request)
        if fault == "503":
            return httpx.Response(503, json={"injected": True}, request=request)
        self.sent.append(request)
        response = self.real.handle_request(request)
        if fault == "lose":
            response.read()
            response.close()
            raise httpx.ReadError("answer lost (injected)", request=request)
        return response


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder: Path = tmp_path_factory.mktemp("guide")
    with SandboxServer(create_shop_app(records=RECORDS, seed=3, token=SHOP_TOKEN)) as shop:
        config = {
            "database": f"sqlite:///{folder / 'guide.db'}",
            "connections": {
                "shop": {"base_url": shop.url, "auth": {"type": "bearer", "token": SHOP_TOKEN}}
            },
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 50},
                    }
                }
            },
            "pipelines": {
                "customers": {"source": "shop.customers", "destination": {"sql": "customers"}}
            },
        }
        path = folder / "interlink.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        store = Store.open(config["database"])
        secret = create_api_key(store.engine, "guide", "write").secret
        store.close()
        with serve_process(path) as (url, _banner):
            yield url.removesuffix("/api/v1"), secret


def test_the_guides_client_submits_polls_and_sees_the_run_complete(served):
    base, secret = served
    with GuideClient(base, secret) as client:
        _submit_poll_and_refuse(client)


def _submit_poll_and_refuse(client: GuideClient) -> None:
    job = client.submit_job({"pipeline": "customers", "full_refresh": True})
    assert job["status"] == "queued" and job["status_url"] == f"/api/v1/jobs/{job['job_id']}"
    result = client.wait_for_job(job["job_id"], timeout=30)
    assert result["status"] == "completed", result
    assert result["type"] == "pipeline" and result["id"] == job["job_id"]
    assert result["result"]["counts"]["read"] == RECORDS

    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.submit_job({"pipeline": "customers", "fullrefresh": True})
    answer = refused.value.response
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "INVALID_REQUEST"
    assert "fullrefresh" in answer.json()["error"]["message"]
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert name in answer.headers


def test_the_guides_retry_rule_gets_through_5xx_and_connection_errors(served):
    base, secret = served
    faults = Faults()
    faults.queued = {"POST": ["refuse", "503"], "GET": ["refuse"]}
    with GuideClient(base, secret, transport=faults) as client:
        job = client.submit_job({"pipeline": "customers"})
        done = client.wait_for_job(job["job_id"], timeout=30)
    assert done["status"] == "completed"
    assert faults.fired == ["refuse", "503", "refuse"]
    assert [r.method for r in faults.sent].count("POST") == 1


def test_our_client_resends_a_lost_submit_with_its_key_and_gets_one_job(served):
    base, secret = served
    faults = Faults()
    faults.queued = {"POST": ["lose"]}
    with JobsClient(base, secret, transport=faults, sleep=lambda _: None) as client:
        before = {job["id"] for job in client.list_jobs(limit=100).items}
        job = client.submit_job(config={"pipeline": "customers"}, type="pipeline")
        assert faults.fired == ["lose"]
        posts = [r for r in faults.sent if r.method == "POST"]
        assert len(posts) == 2 and json.loads(posts[0].content) == {
            "config": {"pipeline": "customers"},
            "type": "pipeline",
        }
        keys = {r.headers["idempotency-key"] for r in posts}
        assert len(keys) == 1
        after = {j["id"] for j in client.list_jobs(limit=100).items}
        assert after - before == {job["job_id"]}
        done = client.wait_for_job(job["job_id"], timeout=30, poll_interval=0.05)
        assert done["status"] == "completed"


def test_wait_for_jobs_timeout_is_also_a_timeout_error():
    plan = WaitPlan(7, timeout=1, poll_interval=0.5, max_interval=1, started=0.0)
    with pytest.raises(TimeoutError) as caught:
        plan.next_delay({"status": "running"}, 5.0)
    assert isinstance(caught.value, JobTimeoutError | JobWaitTimeoutError)
    assert isinstance(caught.value, JobWaitTimeoutError) and caught.value.job_id == 7
