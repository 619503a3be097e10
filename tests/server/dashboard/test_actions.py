"""The dashboard's buttons over HTTP: each action refused without a session, without the
CSRF token, from another origin or with a read key (and nothing done), and each one doing
what the API or the CLI does: switching connections and accounts, a connect link, run now
(with the jobs API's refusals), replaying a delivery, resolving a conflict."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from interlink.jobs import JobFilter, JobSpec
from interlink.oauth import Vault, describe_connections, open_catalog, switch_off
from interlink.store import (
    connection_switches,
    deliveries,
    get_delivery,
    list_conflicts,
    oauth_flows,
    save_token,
)
from interlink.sync import run_pipeline

from .conftest import Dash, DashFactory, add_delivery, add_open_conflict, csrf_of

ACTIONS = [
    ("/connections/shop/disable", {}),
    ("/connections/shop/enable", {}),
    ("/connections/provider/connect", {}),
    ("/pipelines/customers/run", {}),
    ("/deliveries/1/replay", {}),
    ("/conflicts/1/resolve", {"take": "target"}),
]


def _state(dash: Dash) -> dict[str, Any]:
    """Everything an action could change."""
    with dash.store.engine.connect() as conn:
        return {
            "switches": conn.execute(sa.select(connection_switches)).all(),
            "flows": conn.execute(sa.select(oauth_flows.c.id)).all(),
            "deliveries": conn.execute(sa.select(deliveries.c.status, deliveries.c.job_id)).all(),
            "jobs": [job.id for job in dash.queue.list(JobFilter())],
            "conflicts": [c["status"] for c in list_conflicts(dash.store.engine, status=None)],
        }


async def _setup(dash: Dash) -> None:
    add_delivery(dash.store)
    add_open_conflict(dash.store)
    switch_off(dash.config, dash.store, "shop", by="cli")


@pytest.mark.parametrize(("path", "fields"), ACTIONS)
async def test_a_forged_or_unentitled_post_does_nothing(
    dash: Dash, path: str, fields: dict[str, str]
) -> None:
    await _setup(dash)
    before = _state(dash)
    writer = await dash.signed_in("write")
    reader = await dash.signed_in("read")
    stranger = dash.browser()

    nobody = await stranger.post(path, fields, csrf=False)
    assert nobody.status_code == 303 and nobody.headers["location"] == "/login"
    no_token = await writer.post(path, fields, csrf=False)
    assert no_token.status_code == 403 and "security token" in no_token.text
    wrong_token = await writer.post(path, {**fields, "csrf": "0" * 64}, csrf=False)
    assert wrong_token.status_code == 403
    other_site = await writer.post(path, fields, origin="https://evil.example")
    assert other_site.status_code == 403 and "another site" in other_site.text
    null_origin = await writer.post(path, fields, origin="null")
    assert null_origin.status_code == 403
    no_origin = await writer.post(path, fields, origin=None)
    assert no_origin.status_code == 403
    read_key = await reader.post(path, fields)
    assert read_key.status_code == 403 and "needs &#39;write&#39;" in read_key.text
    # The read key's own token, sent by the write key's browser: not this session's.
    swapped = await writer.post(path, {**fields, "csrf": reader.csrf}, csrf=False)
    assert swapped.status_code == 403
    assert _state(dash) == before, "nothing was done"


async def test_a_form_body_is_required(dash: Dash) -> None:
    writer = await dash.signed_in("write")
    as_json = await writer.client.post(
        "/pipelines/customers/run",
        json={"csrf": writer.csrf},
        headers={"Origin": "http://interlink.test"},
    )
    assert as_json.status_code == 400 and "takes forms" in as_json.text
    twice = await writer.client.post(
        "/pipelines/customers/run",
        content=f"csrf={writer.csrf}&csrf={writer.csrf}",
        headers={
            "Origin": "http://interlink.test",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert twice.status_code == 400 and "came twice" in twice.text
    assert dash.queue.list(JobFilter()) == []


async def test_switching_connections_and_accounts(dash: Dash) -> None:
    with dash.store.transaction() as conn:
        save_token(
            conn,
            "provider",
            "acct_1001",
            Vault.open(dash.store.engine).encrypt_json({"access_token": "t"}),
            time.time() + 3600,
            expected_version=None,
        )
    writer = await dash.signed_in("write")
    key = dash.keys["write"].key

    def listed() -> dict[str, Any]:
        return {c["name"]: c for c in describe_connections(dash.config, dash.store.engine)}

    off = await writer.post("/connections/shop/disable")
    assert off.status_code == 303 and off.headers["location"] == "/?notice=disabled"
    shop = listed()["shop"]
    assert shop["enabled"] is False
    assert shop["disabled"]["by"] == f"dashboard: api key {key.id} (write key)"
    page = await writer.get(off.headers["location"])
    assert '<p class="notice" role="status">Switched off.</p>' in page.text
    on = await writer.post("/connections/shop/enable")
    assert on.headers["location"] == "/?notice=enabled" and listed()["shop"]["enabled"]

    account = await writer.post("/connections/provider/disable", {"account": "acct_1001"})
    assert account.status_code == 303
    provider = listed()["provider"]
    assert provider["enabled"] is True and provider["accounts"][0]["enabled"] is False
    await writer.post("/connections/provider/enable", {"account": "acct_1001"})
    assert listed()["provider"]["accounts"][0]["enabled"] is True

    unknown = await writer.post("/connections/nope/disable")
    assert unknown.status_code == 404 and "no connection &#39;nope&#39;" in unknown.text
    not_connected = await writer.post("/connections/provider/disable", {"account": "acct_9"})
    assert not_connected.status_code == 409 and "not connected" in not_connected.text
    bad_name = await writer.post("/connections/provider/disable", {"account": "<b>"})
    assert bad_name.status_code == 422
    no_accounts = await writer.post("/connections/shop/disable", {"account": "acct_1"})
    assert no_accounts.status_code == 409 and "has no accounts" in no_accounts.text


async def test_run_now_queues_the_pipeline_as_the_jobs_api_does(dash: Dash) -> None:
    writer = await dash.signed_in("write")
    answer = await writer.post("/pipelines/customers/run")
    assert answer.status_code == 303
    found = re.fullmatch(r"/jobs/(\d+)", answer.headers["location"])
    assert found is not None
    job = dash.queue.get(int(found.group(1)))
    assert job is not None and job.kind == "pipeline.run" and job.args == {"pipeline": "customers"}
    assert job.status == "queued" and job.pipeline == "customers"

    switch_off(dash.config, dash.store, "shop", reason="moving", by="cli")
    refused = await writer.post("/pipelines/customers/run")
    assert refused.status_code == 409 and "Cannot run now" in refused.text
    assert "connection &#39;shop&#39; is disabled (moving)" in refused.text
    unknown = await writer.post("/pipelines/nope/run")
    assert unknown.status_code == 404
    assert [j.id for j in dash.queue.list(JobFilter())] == [job.id]


async def test_a_connect_button_hands_the_browser_a_ticket(dash: Dash) -> None:
    writer = await dash.signed_in("write")
    answer = await writer.post("/connections/provider/connect", {"account": "acct_1002"})
    assert answer.status_code == 200, answer.text
    link = re.search(r'<a class="button" id="connect-link" href="([^"]+)"', answer.text)
    assert link is not None
    url = link.group(1).replace("&amp;", "&")
    assert re.fullmatch(
        r"http://127\.0\.0\.1:8765/connect/provider/authorize\?ticket=[A-Za-z0-9_-]{43}", url
    )
    assert f'<meta http-equiv="refresh" content="0; url={link.group(1)}">' in answer.text
    with dash.store.engine.connect() as conn:
        flow = conn.execute(sa.select(oauth_flows)).one()
    assert flow.account == "acct_1002" and flow.status == "ticket"
    assert flow.created_by == f"dashboard:apikey:{dash.keys['write'].key.id}"
    assert url.rsplit("=", 1)[1] not in str(flow), "only the ticket's hash is kept"
    refused = await writer.post("/connections/shop/connect")
    assert refused.status_code == 409 and "interlink connect shop" in refused.text


async def test_replaying_a_delivery(dash: Dash) -> None:
    failed = add_delivery(dash.store)
    writer = await dash.signed_in("write")
    answer = await writer.post(f"/deliveries/{failed}/replay")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/deliveries/{failed}?notice=replayed"
    delivery = get_delivery(dash.store.engine, failed)
    assert delivery is not None and delivery.status == "pending" and delivery.job_id is not None
    job = dash.queue.get(delivery.job_id)
    assert job is not None and job.kind == "webhook.process" and job.max_attempts == 1
    assert delivery.last_error == "RuntimeError: the handler is told to fail", "history kept"
    page = await writer.get(answer.headers["location"])
    assert "Queued again: a new job processes this delivery." in page.text

    busy = add_delivery(dash.store, status="processing", last_error=None)
    running = dash.queue.enqueue(JobSpec("noop"))
    with dash.store.transaction() as conn:
        conn.execute(sa.update(deliveries).where(deliveries.c.id == busy).values(job_id=running.id))
    page = await writer.get(f"/deliveries/{busy}")
    assert re.search(r"<button type=\"submit\" disabled[^>]*>Replay</button>", page.text)
    refused = await writer.post(f"/deliveries/{busy}/replay")
    assert refused.status_code == 409 and "being processed right now" in refused.text
    missing = await writer.post("/deliveries/999/replay")
    assert missing.status_code == 404


async def test_resolving_a_conflict_as_the_cli_does(
    make_dash: DashFactory, sandbox: tuple[str, Any]
) -> None:
    url, _ = sandbox
    dash = await make_dash(sandbox=url)
    result = await run_pipeline(
        dash.config,
        "to_commerce",
        store=dash.store,
        catalogs=lambda accounts: open_catalog(dash.config, dash.store, accounts=accounts),
    )
    assert result.status == "succeeded", result
    parked = list_conflicts(dash.store.engine, "to_commerce")
    assert len(parked) == 3
    first, second = parked[0]["id"], parked[1]["id"]
    writer = await dash.signed_in("write")
    page = await writer.get(f"/conflicts/{first}")
    assert page.status_code == 200 and "Take the source" in page.text

    bad = await writer.post(f"/conflicts/{first}/resolve", {"take": "both"})
    assert bad.status_code == 422
    # While a run holds the pipeline, a resolution is refused (409), not blamed on the API.
    run_id = dash.store.begin_run("to_commerce")
    busy = await writer.post(f"/conflicts/{first}/resolve", {"take": "source"})
    assert busy.status_code == 409, busy.text
    assert "cannot be resolved now: already running" in busy.text
    dash.store.finish_run("to_commerce", run_id, status="succeeded", counts={}, errors=[])
    httpx.patch(
        f"{url}/shop/customers/1",
        json={"company": "Taken From Shop"},
        headers={"Authorization": "Bearer sandbox-token"},
    ).raise_for_status()
    took = await writer.post(f"/conflicts/{first}/resolve", {"take": "source"})
    assert took.status_code == 303, took.text
    assert took.headers["location"] == f"/conflicts/{first}?notice=resolved"
    kept = await writer.post(f"/conflicts/{second}/resolve", {"take": "target"})
    assert kept.status_code == 303, kept.text
    statuses = {
        c["id"]: (c["status"], c["resolution"])
        for c in list_conflicts(dash.store.engine, status=None)
    }
    assert statuses[first] == ("resolved", "source") and statuses[second] == ("resolved", "target")
    again = await writer.post(f"/conflicts/{second}/resolve", {"take": "target"})
    assert again.status_code == 409 and "already resolved" in again.text
    page = await writer.get(f"/conflicts/{first}")
    assert "Take the source" not in page.text and "took the source" in page.text
    assert csrf_of(page.text) == writer.csrf
