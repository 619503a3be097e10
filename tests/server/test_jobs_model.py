"""RELIABILITY.md J3: the jobs API against a model, as a Hypothesis state machine.

Steps submit pipeline runs and noops (with and without an Idempotency-Key, from two write
keys; a read key is refused), read and list jobs (with each filter, and paged with
`before`), cancel them, and run the worker until nothing is ready. After every step the
whole list equals the model: each job's status, kind and pipeline. Transitions are
checked as they happen: a job's status only moves queued -> completed or cancelled here,
and a finished job never changes. The app is the real one on a real SQLite file; its
worker runs the real noop, and a pipeline run's handler that completes at once (the
subject is the API, not the sync).

`INTERLINK_J3_EXAMPLES` and `INTERLINK_J3_STEPS` set the size: RELIABILITY.md's 200 x 50
by default (about 30 s). At that size it found the SQLite queue leaking a connection per
ended thread until requests failed (tests/jobs/test_queue_connections.py).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from interlink.jobs import JobContext, JobKinds, open_queue
from interlink.server import create_app
from interlink.store import Store, create_api_key

from .conftest import API, make_config

EXAMPLES = int(os.environ.get("INTERLINK_J3_EXAMPLES", "200"))
STEPS = int(os.environ.get("INTERLINK_J3_STEPS", "50"))
PIPELINES = ("customers", "stock", "customers_copy")
IDEMPOTENCY_KEYS = ("k1", "k2", "k3")
FINISHED = {"completed", "failed", "cancelled"}


async def _completes(context: JobContext) -> dict[str, Any]:
    return {"pipeline": context.job.args.get("pipeline"), "stood_in": True}


@dataclass
class Modelled:
    kind: str
    pipeline: str | None
    status: str = "queued"


class Client:
    """httpx on the app (ASGITransport), driven from the state machine's sync rules
    through one event loop."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://interlink.test")

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.run(self.http.get(path, **kwargs))  # type: ignore[no-any-return]

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.run(self.http.post(path, **kwargs))  # type: ignore[no-any-return]

    def close(self) -> None:
        self.run(self.http.aclose())
        self.loop.close()


@dataclass
class Rig:
    """One app on one SQLite file for the whole run; each example starts from no jobs."""

    client: Client
    store: Store
    queue: Any
    keys: dict[str, str] = field(default_factory=dict)


_RIG: dict[str, Rig] = {}


def _rig(tmp: Path) -> Rig:
    if "rig" not in _RIG:
        # The API's rate limits are tested elsewhere; here they would only cut runs short.
        unlimited = {"POST /jobs": "1000000/min", "default": "1000000/min"}
        config = make_config(f"sqlite:///{tmp / 'j3.db'}", server={"rate_limits": unlimited})
        store = Store.open(config.database)
        queue = open_queue(config, store)
        app = create_app(config, store=store, queue=queue, worker=False)
        rig = Rig(Client(app), store, queue)
        for name, scope in (("w1", "write"), ("w2", "write"), ("r", "read")):
            rig.keys[name] = create_api_key(store.engine, name, scope).secret
        _RIG["rig"] = rig
    return _RIG["rig"]


class JobsApi(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.rig = _rig(JobsApi.tmp)
        with self.rig.store.engine.begin() as conn:  # idempotency keys are kept on jobs
            conn.exec_driver_sql("DELETE FROM interlink_jobs")
        self.model: dict[int, Modelled] = {}
        # (API key, Idempotency-Key) -> (job id, the body it was first sent with)
        self.idempotent: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}

    tmp: Path = Path(".")

    def _headers(self, key: str, idempotency: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.rig.keys[key]}"}
        if idempotency is not None:
            headers["Idempotency-Key"] = idempotency
        return headers

    def _get(self, path: str, **params: Any) -> Any:
        return self.rig.client.get(API + path, params=params, headers=self._headers("r"))

    # -- submitting ------------------------------------------------------------------------

    @rule(
        target=jobs,
        key=st.sampled_from(["w1", "w2"]),
        pipeline=st.sampled_from([None, *PIPELINES]),
        idempotency=st.sampled_from([None, *IDEMPOTENCY_KEYS]),
        priority=st.integers(-5, 5),
    )
    def submit(self, key: str, pipeline: str | None, idempotency: str | None, priority: int) -> Any:
        body: dict[str, Any] = {"kind": "noop"} if pipeline is None else {"pipeline": pipeline}
        body["priority"] = priority
        answer = self.rig.client.post(
            API + "/jobs", json=body, headers=self._headers(key, idempotency)
        )
        earlier = self.idempotent.get((key, idempotency)) if idempotency else None
        if earlier is not None and earlier[1] != body:
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"]["details"][0]["field"] == "Idempotency-Key"
            return multiple()
        assert answer.status_code == 202, answer.text
        data = answer.json()["data"]
        job_id = int(data["job_id"])
        assert data["status_url"] == f"{API}/jobs/{job_id}"
        if earlier is not None:
            assert job_id == earlier[0], "the same key and body give back the same job"
            assert data["status"] == self.model[job_id].status
            return multiple()
        assert job_id not in self.model and data["status"] == "queued"
        self.model[job_id] = Modelled("noop" if pipeline is None else "pipeline.run", pipeline)
        if idempotency is not None:
            self.idempotent[(key, idempotency)] = (job_id, body)
        return job_id

    @rule(pipeline=st.sampled_from([None, *PIPELINES]))
    def a_read_key_cannot_submit(self, pipeline: str | None) -> None:
        body = {"kind": "noop"} if pipeline is None else {"pipeline": pipeline}
        answer = self.rig.client.post(API + "/jobs", json=body, headers=self._headers("r"))
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "FORBIDDEN"

    # -- reading -----------------------------------------------------------------------------

    @rule(job_id=jobs)
    def get(self, job_id: int) -> None:
        answer = self._get(f"/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        shown = answer.json()["data"]
        expected = self.model[job_id]
        assert (shown["id"], shown["status"], shown["kind"], shown["pipeline"]) == (
            job_id,
            expected.status,
            expected.kind,
            expected.pipeline,
        )
        assert shown["cancel_requested"] is False or expected.status == "cancelled"

    @rule(offset=st.integers(1, 1000))
    def get_unknown(self, offset: int) -> None:
        unknown = max(self.model, default=0) + offset
        answer = self._get(f"/jobs/{unknown}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"

    @rule(
        status=st.sampled_from([None, "queued", "completed", "cancelled", "failed", "running"]),
        pipeline=st.sampled_from([None, *PIPELINES]),
        kind=st.sampled_from([None, "noop", "pipeline.run"]),
        limit=st.integers(1, 7),
    )
    def list_pages(
        self, status: str | None, pipeline: str | None, kind: str | None, limit: int
    ) -> None:
        """Every page of a filtered list, followed by `next_before` to its end."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("status", status), ("pipeline", pipeline), ("kind", kind)):
            if value is not None:
                params[name] = value
        seen: list[int] = []
        for _ in range(len(self.model) + 2):
            answer = self._get("/jobs", **params)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            page = [int(job["id"]) for job in body["data"]]
            assert len(page) <= limit
            seen.extend(page)
            following = body["meta"].get("next_before")
            if following is None:
                break
            assert following == page[-1]
            params["before"] = following
        expected = sorted(
            (
                job_id
                for job_id, job in self.model.items()
                if (status is None or job.status == status)
                and (pipeline is None or job.pipeline == pipeline)
                and (kind is None or job.kind == kind)
            ),
            reverse=True,
        )
        assert seen == expected

    # -- changing ----------------------------------------------------------------------------

    @rule(job_id=jobs, key=st.sampled_from(["w1", "w2"]))
    def cancel(self, job_id: int, key: str) -> None:
        answer = self.rig.client.post(f"{API}/jobs/{job_id}/cancel", headers=self._headers(key))
        job = self.model[job_id]
        if job.status in FINISHED:
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"]["code"] == "CONFLICT"
            return
        assert answer.status_code == 200, answer.text
        shown = answer.json()["data"]
        assert shown["status"] == "cancelled" and shown["finished_at"] is not None
        job.status = "cancelled"

    @rule(job_id=jobs)
    def a_read_key_cannot_cancel(self, job_id: int) -> None:
        answer = self.rig.client.post(f"{API}/jobs/{job_id}/cancel", headers=self._headers("r"))
        assert answer.status_code == 403

    @rule()
    def work(self) -> None:
        """The worker, until no job is ready: every queued job completes."""
        kinds = JobKinds.default()
        kinds.register("pipeline.run", _completes)
        self.rig.client.run(self.rig.queue.work(kinds, concurrency=2, burst=True))
        for job in self.model.values():
            if job.status == "queued":
                job.status = "completed"

    @rule(job_id=consumes(jobs))
    def forget(self, job_id: int) -> None:
        """Drops a job from the bundle only (it stays in the model and the lists)."""

    # -- what always holds -------------------------------------------------------------------

    @invariant()
    def the_list_is_the_model(self) -> None:
        answer = self._get("/jobs", limit=100)
        assert answer.status_code == 200, answer.text
        shown = {int(job["id"]): job for job in answer.json()["data"]}
        newest = sorted(self.model, reverse=True)[:100]
        assert sorted(shown, reverse=True) == newest
        for job_id in newest:
            job, seen = self.model[job_id], shown[job_id]
            assert (seen["status"], seen["kind"], seen["pipeline"]) == (
                job.status,
                job.kind,
                job.pipeline,
            ), job_id
            assert (seen["finished_at"] is not None) == (job.status in FINISHED)


@pytest.fixture(scope="module")
def j3_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("j3")
    yield path
    rig = _RIG.pop("rig", None)
    if rig is not None:
        rig.client.close()
        rig.queue.close()
        rig.store.close()


def test_the_jobs_api_follows_its_model(j3_dir: Path) -> None:
    JobsApi.tmp = j3_dir
    machine = JobsApi.TestCase
    machine.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    machine().runTest()
