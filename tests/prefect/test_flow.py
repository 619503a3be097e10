"""`run_pipelines`: several pipelines in dependency order, in a real Prefect flow run, and
`plan_order`, which checks the plan before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlink.errors import ConfigError
from interlink.prefect import PipelinesFailedError, Step, load_project, plan_order, run_pipelines
from interlink.store import Store
from prefect import flow

from .conftest import flow_run_artifacts

KNOWN = ["customers", "orders", "invoices", "refunds"]

# -- the plan ----------------------------------------------------------------------------------


def test_without_edges_the_given_order_is_a_chain():
    assert plan_order(KNOWN, ["orders", "customers"]) == [
        Step("orders", ()),
        Step("customers", ("orders",)),
    ]
    assert [step.pipeline for step in plan_order(KNOWN)] == KNOWN


def test_edges_decide_the_order_and_ties_keep_the_given_one():
    steps = plan_order(KNOWN, None, {"customers": ["invoices"], "invoices": ["orders"]})
    assert steps == [
        Step("orders", ()),
        Step("invoices", ("orders",)),
        Step("customers", ("invoices",)),
        Step("refunds", ()),
    ]


@pytest.mark.parametrize(
    ("pipelines", "after", "message"),
    [
        (["custmers"], None, "pipelines: unknown pipeline 'custmers'; did you mean 'customers'?"),
        (None, {"orders": ["invoicez"]}, "after.orders: unknown pipeline 'invoicez'"),
        (["orders"], {"orders": ["customers"]}, "'customers' is not one of the pipelines this"),
        (["orders", "orders"], None, "pipelines: orders named more than once"),
        (None, {"orders": ["orders"]}, "'orders' cannot run after itself"),
        (
            None,
            {"orders": ["invoices"], "invoices": ["refunds"], "refunds": ["orders"]},
            "a cycle: orders -> invoices -> refunds -> orders",
        ),
        ("orders", None, "expected a list of names, got the string 'orders'"),
    ],
)
def test_a_wrong_plan_is_refused_naming_what_is_wrong(pipelines, after, message):
    with pytest.raises(ConfigError) as caught:
        plan_order(KNOWN, pipelines, after)
    assert message in str(caught.value)


# -- the flow ----------------------------------------------------------------------------------


def _runs(project: Path) -> list[dict]:
    store = Store.open(load_project(project).config.database)
    try:
        return store.runs(limit=100)
    finally:
        store.close()


def test_the_flow_runs_pipelines_and_publishes_one_table(project):
    state = run_pipelines(["orders", "customer_list"], config=str(project), return_state=True)
    counts = state.result()
    assert list(counts) == ["orders", "customer_list"]
    assert all(run.ok for run in counts.values())
    assert counts["customer_list"].created == 120 and counts["orders"].created > 120
    runs = _runs(project)
    assert [run["pipeline"] for run in reversed(runs)] == ["orders", "customer_list"]

    artifacts = flow_run_artifacts(state.state_details.flow_run_id)
    table = artifacts["interlink-pipelines"]
    assert [(row["pipeline"], row["created"]) for row in table] == [
        ("orders", counts["orders"].created),
        ("customer_list", 120),
    ]
    # Each task published its own too.
    assert artifacts["interlink-customer-list"][0]["read"] == 120


def test_the_flow_runs_as_a_subflow_of_the_users_flow(project):
    @flow
    def nightly():
        return run_pipelines(["customer_list"], config=str(project))

    assert nightly()["customer_list"].ok


def test_a_failed_pipeline_stops_its_dependants_and_the_flow_fails_naming_it(project):
    state = run_pipelines(
        ["broken", "after_broken", "customer_list", "orders"],
        after={"after_broken": ["broken"], "orders": ["customer_list"]},
        config=str(project),
        return_state=True,
    )
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PipelinesFailedError)
    text = str(error)
    assert text.startswith("1 of 4 pipelines failed (broken failed: "), text
    assert "404" in text and "not run, as they run after a failed one: after_broken" in text
    assert error.runs["after_broken"].status == "not_run"
    assert error.runs["after_broken"].message == "runs after broken, which failed"
    assert error.runs["customer_list"].ok and error.runs["orders"].ok
    # Nothing ran for the stopped pipeline; the independent ones did.
    ran = {run["pipeline"]: run["status"] for run in _runs(project)}
    assert ran == {"broken": "failed", "customer_list": "succeeded", "orders": "succeeded"}

    table = flow_run_artifacts(state.state_details.flow_run_id)["interlink-pipelines"]
    assert [(row["pipeline"], row["status"]) for row in table] == [
        ("broken", "failed"),
        ("after_broken", "not_run"),
        ("customer_list", "succeeded"),
        ("orders", "succeeded"),
    ]
    assert table[1]["reason"] == "runs after broken, which failed"


def test_in_a_chain_a_failure_stops_the_rest(project):
    state = run_pipelines(["broken", "customer_list"], config=str(project), return_state=True)
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PipelinesFailedError)
    assert error.runs["customer_list"].status == "not_run"
    assert [run["pipeline"] for run in _runs(project)] == ["broken"]


def test_independent_pipelines_may_run_side_by_side(project):
    counts = run_pipelines(
        ["customer_list", "orders", "after_broken"], after={}, config=str(project), concurrency=3
    )
    assert [run.status for run in counts.values()] == ["succeeded"] * 3
    assert len(_runs(project)) == 3


def test_a_cycle_fails_the_flow_before_anything_runs(project):
    database = Path(str(load_project(project).config.database.url).removeprefix("sqlite:///"))
    with pytest.raises(ConfigError, match="cycle: orders -> customer_list -> orders"):
        run_pipelines(
            ["orders", "customer_list"],
            after={"orders": ["customer_list"], "customer_list": ["orders"]},
            config=str(project),
        )
    assert not database.exists(), "nothing ran, not even the database was created"
