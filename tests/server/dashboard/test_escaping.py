"""Hostile text everywhere the dashboard shows something it did not write itself: a webhook
payload, its headers and event type, an API key's name, a switch-off reason, a run's
message and errors, a job's error, a conflict's fields, a metric's groups, the query
string. Each page must show it as text: the markup never comes through."""

from __future__ import annotations

import sqlalchemy as sa

from interlink.jobs import JobSpec
from interlink.oauth import switch_off
from interlink.store import create_api_key, jobs

from .conftest import Dash, add_delivery, add_open_conflict, fill_orders

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror="


def assert_inert(text: str) -> None:
    """No markup of HOSTILE's made it into the page; only our own script tag is there."""
    assert "<script>alert" not in text and "<img src=x" not in text
    assert text.count("<script") == 1 and '<script src="/static/dashboard.js' in text


async def test_a_hostile_delivery_is_shown_as_text(dash: Dash) -> None:
    as_json = add_delivery(
        dash.store,
        body=('{"type":"order.created","note":"' + HOSTILE.replace('"', '\\"') + '"}').encode(),
        headers={"x-note": f'"><{HOSTILE}', "webhook-id": "evt_1"},
        last_error=HOSTILE,
    )
    as_text = add_delivery(dash.store, body=HOSTILE.encode())
    with dash.store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE interlink_webhook_deliveries SET event_type = :e"), {"e": HOSTILE}
        )
    browser = await dash.signed_in("write")
    for delivery in (as_json, as_text):
        answer = await browser.get(f"/deliveries/{delivery}")
        assert answer.status_code == 200
        assert_inert(answer.text)
        assert ESCAPED in answer.text
    overview = await browser.get("/")
    assert_inert(overview.text)
    assert ESCAPED in overview.text, "the event type, escaped, in the listing"


async def test_names_reasons_messages_and_errors_are_escaped(dash: Dash) -> None:
    hostile_key = create_api_key(dash.store.engine, HOSTILE, "write")
    switch_off(dash.config, dash.store, "shop", reason=HOSTILE, by="cli")
    store = dash.store
    run_id = store.begin_run("customers")
    with store.transaction() as conn:
        store.record_error(conn, run_id, "customers", key=HOSTILE, step="load", error=HOSTILE)
    store.finish_run(
        "customers",
        run_id,
        status="failed",
        counts={},
        errors=[{"error": HOSTILE}],
        message=HOSTILE,
    )
    job = dash.queue.enqueue(JobSpec("noop"))
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job.id)
            .values(status="failed", error=HOSTILE, result={"status": HOSTILE})
        )
    conflict = add_open_conflict(
        store, source={HOSTILE: HOSTILE, "email": "a"}, target={"email": HOSTILE}
    )
    browser = dash.browser()
    assert (await browser.sign_in(hostile_key.secret)).status_code == 303
    for path in ("/", f"/runs/{run_id}", f"/jobs/{job.id}", f"/conflicts/{conflict}"):
        answer = await browser.get(path)
        assert answer.status_code == 200, path
        assert_inert(answer.text)
        assert ESCAPED in answer.text, path


async def test_a_metrics_hostile_groups_are_escaped(dash: Dash) -> None:
    fill_orders(dash.store.engine, [(0, HOSTILE), (1, HOSTILE), (1, "paid")])
    browser = await dash.signed_in("read")
    for path in ("/metrics", "/metrics/orders_per_day"):
        answer = await browser.get(path)
        assert answer.status_code == 200
        assert_inert(answer.text)
        assert ESCAPED in answer.text
    assert 'data-group="&lt;script&gt;' in answer.text


async def test_the_query_string_is_never_shown_as_markup(dash: Dash) -> None:
    browser = await dash.signed_in("read")
    notice = await browser.get(f"/?notice={HOSTILE}")
    assert_inert(notice.text)
    assert "alert" not in notice.text, "an unknown notice shows nothing at all"
    stranger = dash.browser()
    form = await stranger.get('/login?next=/"><script>alert(1)</script>')
    assert form.status_code == 200
    assert_inert(form.text)
    assert 'value="/&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in form.text
    refused = await browser.get(f"/metrics/orders_per_day?{HOSTILE}=1")
    assert refused.status_code == 422
    assert_inert(refused.text)
