"""`run_pipeline` and `read_resource` in real Prefect flows, against the sandbox, on a
real temporary Prefect server: counts as results and artifacts, logs in the task run's
log, failures with interlink's reason."""

from __future__ import annotations

import asyncio
import logging
import pickle

import pytest
import yaml
from prefect.context import get_run_context

from interlink.errors import ConfigError
from interlink.prefect import (
    COUNT_FIELDS,
    PipelineRunError,
    RunCounts,
    forward_logs,
    load_project,
    read_resource,
    run_pipeline,
)
from interlink.sandbox import SandboxServer
from interlink.store import COUNTERS, Store
from prefect import flow, task
from tests.sync.fake_source import FakeSource, config

from .conftest import commerce_customers, flow_run_artifacts, task_run_logs


def _flow_run_id() -> object:
    context = get_run_context()
    return context.flow_run.id  # type: ignore[union-attr]


def test_a_pipeline_runs_in_a_task_and_its_counts_are_the_result_and_an_artifact(project, sandbox):
    @flow
    def sync() -> tuple[RunCounts, object, object]:
        state = run_pipeline("customers", config=str(project), return_state=True)
        return state.result(), state.state_details.task_run_id, _flow_run_id()

    counts, task_run_id, flow_run_id = sync()

    assert isinstance(counts, RunCounts) and counts.ok
    assert (counts.read, counts.created, counts.failed) == (120, 120, 0)
    assert counts.run_id is not None and counts.pipeline == "customers"
    assert len(commerce_customers(sandbox)) == 120, "loaded into the JSON:API target"
    # interlink's own record of the run says the same.
    store = Store.open(load_project(project).config.database)
    try:
        row = store.runs("customers")[0]
    finally:
        store.close()
    assert (row["id"], row["status"], row["created"]) == (counts.run_id, "succeeded", 120)

    artifacts = flow_run_artifacts(flow_run_id)
    (table,) = artifacts["interlink-customers"]
    assert table["pipeline"] == "customers" and table["status"] == "succeeded"
    assert (table["read"], table["created"], table["failed"]) == (120, 120, 0)
    logs = task_run_logs(task_run_id)
    assert "prefect.task_runs: customers: succeeded, 120 read, 120 created in" in "\n".join(logs)

    # A second run finds every customer there already (matched by email), and says so.
    again = flow(lambda: run_pipeline("customers", config=str(project)), name="again")()
    assert again.ok and again.created == 0 and again.read == 120


def test_the_result_pickles_and_has_every_counter_interlink_keeps():
    assert COUNT_FIELDS == COUNTERS
    counts = RunCounts(pipeline="p", status="succeeded", read=3, created=2, updated=1)
    assert pickle.loads(pickle.dumps(counts)) == counts
    assert counts.counts == {**dict.fromkeys(COUNTERS, 0), "read": 3, "created": 2, "updated": 1}
    error = PipelineRunError(RunCounts(pipeline="p", status="failed", message="boom"))
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) == "pipeline p: failed: boom"


def test_a_failed_run_fails_the_task_with_interlinks_reason(project):
    @flow
    def sync() -> object:
        return run_pipeline("broken", config=str(project), return_state=True)

    state = sync(return_state=True)
    assert state.is_failed()
    task_state = state.result(raise_on_failure=False)
    assert task_state.is_failed()
    error = task_state.result(raise_on_failure=False)
    assert isinstance(error, PipelineRunError)
    assert error.counts.status == "failed" and error.counts.run_id is not None
    # The id is the run interlink recorded, failed before its first batch.
    assert isinstance(error.counts.run_id, int) and error.counts.run_id >= 1
    assert "404" in str(error) and "/no-such-list" in str(error), str(error)
    assert "pipeline broken: failed:" in str(error)


def test_a_run_with_failed_records_fails_unless_told_otherwise(project, sandbox, tmp_path):
    # Commerce refuses a customer without an email (a 422 per record): map the email
    # from a field the shop does not have for some records.
    text = project.read_text().replace("      email: email\n", "      email: first_name\n", 1)
    project.write_text(text)

    @flow
    def strict() -> object:
        return run_pipeline("customers", config=str(project), return_state=True)

    state = strict(return_state=True)
    error = state.result(raise_on_failure=False).result(raise_on_failure=False)
    assert isinstance(error, PipelineRunError), error
    assert error.counts.status == "completed_with_errors" and error.counts.failed > 0
    assert "records failed, first:" in str(error)

    @flow
    def lenient() -> RunCounts:
        return run_pipeline("customers", config=str(project), fail_on_record_errors=False)

    counts = lenient()
    assert counts.status == "completed_with_errors" and counts.failed > 0


def test_a_wrong_config_fails_the_task_naming_its_file_and_line(project):
    text = project.read_text().replace("source: shop.orders", "source: shop.ordres")
    project.write_text(text)

    with pytest.raises(ConfigError, match=r"interlink\.yaml:\d+: .*ordres"):
        flow(lambda: run_pipeline("customers", config=str(project)), name="bad-config")()

    project.write_text(text.replace("source: shop.ordres", "source: shop.orders"))
    with pytest.raises(ConfigError, match="unknown pipeline 'custmers'; known: customers"):
        flow(lambda: run_pipeline("custmers", config=str(project)), name="unknown")()


def test_interlinks_log_records_go_to_the_task_runs_log_masked(project):
    @flow
    def sync() -> object:
        state = run_pipeline(
            "customer_list", config=str(project), log_level="DEBUG", return_state=True
        )
        return state.state_details.task_run_id

    task_run_id = sync()
    logs = task_run_logs(task_run_id)
    requests = [m for m in logs if m.startswith("interlink.http: GET ") and "/shop/customers" in m]
    assert requests, logs
    assert all("sandbox-token" not in m for m in logs)
    # The handler is gone after the task, and the logger's level is back.
    interlink_logger = logging.getLogger("interlink")
    assert not [h for h in interlink_logger.handlers if type(h).__name__ == "_ToPrefect"]
    assert interlink_logger.level == logging.NOTSET


def test_a_secret_in_a_log_record_is_masked_in_prefect(project):
    secret = "sandbox-token"

    @task
    def noisy(path: str) -> object:
        with forward_logs(load_project(path).redactor):
            logging.getLogger("interlink.sync").warning("sent %s to the shop", secret)
            logging.getLogger("interlink.sync").debug("below the level: not sent")
        logging.getLogger("interlink.sync").warning("after the task's block: not sent")
        return get_run_context().task_run.id  # type: ignore[union-attr]

    task_run_id = flow(lambda: noisy(str(project)), name="noisy")()
    logs = task_run_logs(task_run_id)
    assert "interlink.sync: sent *** to the shop" in logs, logs
    assert not [m for m in logs if "below the level" in m or "after the task" in m]
    assert not [m for m in logs if secret in m]


def test_read_resource_reads_a_bounded_number_of_records(project):
    records = flow(
        lambda: read_resource("shop.customers", config=str(project), limit=70), name="read"
    )()
    assert len(records) == 70 and records[0]["id"] == 1
    with pytest.raises(ValueError, match="limit: expected a positive number"):
        flow(
            lambda: read_resource("shop.customers", config=str(project), limit=0),
            name="read-zero",
        )()


# Prefect's own API client leaves a socket to its server open when an async flow's loop
# ends (the socket's peer is the harness's port; interlink opens none to it).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_task_runs_from_an_async_flow_too(project):
    @flow
    async def nightly() -> RunCounts:
        # A synchronous task in an async flow: interlink's run gets a loop of its own.
        return run_pipeline("customer_list", config=str(project))

    counts = asyncio.run(nightly())
    assert counts.ok and counts.created == 120


def test_a_short_read_fails_the_task_never_succeeded_with_a_short_table(tmp_path):
    fake = FakeSource(300)
    fake.lie_total = 25  # the API announces 325 and serves 300
    with SandboxServer(fake.app()) as server:
        path = tmp_path / "interlink.yaml"
        database = f"sqlite:///{tmp_path / 'i.db'}"
        path.write_text(
            yaml.safe_dump(
                config(
                    server.url, database, {"p": {"source": "src.items", "destination": "sql:items"}}
                )
            )
        )

        @flow
        def sync() -> RunCounts:
            return run_pipeline("p", config=str(path))

        state = sync(return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PipelineRunError), error
    assert error.counts.status == "failed" and error.counts.read == 300
    assert "325" in str(error) and "300" in str(error), str(error)
