"""Every page of the dashboard over HTTP, signed in: what each shows, its title, its security
headers (strict CSP, no-store, no framing), pages for what does not exist, the static files
with their long cache, and the JSON state a job page polls."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from interlink.jobs import pipeline_job
from interlink.server.dashboard import DASHBOARD_CSP, STATIC_CACHE
from interlink.store import save_token

from .conftest import Dash, add_delivery, add_open_conflict, fill_orders


def assert_page(answer: httpx.Response, title: str, status: int = 200) -> str:
    assert answer.status_code == status, answer.text[:2000]
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == DASHBOARD_CSP
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "script-src 'self'"):
        assert directive in answer.headers["content-security-policy"]
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"
    assert f"<title>{title} · interlink</title>" in answer.text
    assert "<script>" not in answer.text and " style=" not in answer.text, "nothing inline"
    return str(answer.text)


def test_the_csp_allows_what_the_pages_use_and_nothing_inline() -> None:
    assert DASHBOARD_CSP.startswith("default-src 'self';")
    assert "form-action 'self'" in DASHBOARD_CSP and "base-uri 'none'" in DASHBOARD_CSP


async def test_the_overview_lists_everything(dash: Dash) -> None:
    job = dash.queue.enqueue(pipeline_job("customers"))
    delivery = add_delivery(dash.store)
    conflict = add_open_conflict(dash.store)
    browser = await dash.signed_in("write")
    text = assert_page(await browser.get("/"), "Overview")
    for name in ("shop", "commerce", "provider"):
        assert f'id="connection-{name}"' in text
    assert "auth oauth2_client_credentials" in text
    assert text.count("Run now<span") == 2
    assert 'action="/pipelines/customers/run"' in text
    assert 'action="/connections/provider/connect"' in text, "provider can be connected"
    assert 'action="/connections/shop/connect"' not in text, "a bearer connection cannot"
    assert f'href="/jobs/{job.id}"' in text and f'href="/deliveries/{delivery}"' in text
    assert f'href="/conflicts/{conflict}"' in text
    assert 'href="/metrics/orders_per_day"' in text
    assert "The job worker is off in this server" in text
    assert re.search(r"badge-queued\">queued</span> <strong>1</strong>", text)
    assert re.search(r"badge-failed\">failed</span> <strong>1</strong>", text)


async def test_the_overview_shows_switches_accounts_and_runs(dash: Dash) -> None:
    from interlink.oauth import Vault, switch_off

    switch_off(dash.config, dash.store, "shop", reason="maintenance window", by="cli")
    vault = Vault.open(dash.store.engine)
    with dash.store.transaction() as conn:
        save_token(
            conn,
            "provider",
            "acct_1001",
            vault.encrypt_json({"access_token": "secret-access-token"}),
            time.time() + 3600,
            expected_version=None,
        )
    browser = await dash.signed_in("write")
    text = assert_page(await browser.get("/"), "Overview")
    shop = text[text.index('id="connection-shop"') : text.index('id="connection-commerce"')]
    assert 'badge-off">off' in shop and "maintenance window" in shop and "by cli" in shop
    assert "Switch on<span" in shop
    provider = text[text.index('id="connection-provider"') :]
    assert "acct_1001" in provider and 'badge-active">active' in provider
    assert "secret-access-token" not in text


async def test_the_overview_says_what_a_pipeline_still_owes(dash: Dash) -> None:
    name = next(iter(dash.config.pipelines))
    run_id = dash.store.begin_run(name)
    with dash.store.begin() as conn:
        dash.store.owe(conn, name, run_id, [("<b>7</b>", "map", "MappingError: x")])
    browser = await dash.signed_in("read")
    text = assert_page(await browser.get("/"), "Overview")
    row = text[text.index(f'id="pipeline-{name}"') :]
    row = row[: row.index("</tr>")]
    assert "1 failed record not written yet" in row
    assert f"interlink failed list {name}" in row and "<b>7</b>" not in text


async def test_a_read_key_sees_everything_but_no_buttons(dash: Dash) -> None:
    add_delivery(dash.store)
    conflict = add_open_conflict(dash.store)
    browser = await dash.signed_in("read")
    text = assert_page(await browser.get("/"), "Overview")
    assert re.findall(r"<button[^>]*>([^<]*)", text) == ["Sign out"]
    assert "<form" in text and text.count("<form") == 1, "only the sign-out form"
    for path in ("/deliveries/1", f"/conflicts/{conflict}"):
        page = await browser.get(path)
        assert page.status_code == 200
        assert re.findall(r"<button[^>]*>([^<]*)", page.text) == ["Sign out"]


async def test_a_run_page_has_counts_errors_and_message(dash: Dash) -> None:
    store = dash.store
    run_id = store.begin_run("customers")
    with store.transaction() as conn:
        store.record_error(
            conn, run_id, "customers", key="cus_7", step="load", error="email: not an email"
        )
    store.finish_run(
        "customers",
        run_id,
        status="completed_with_errors",
        counts={"read": 12, "created": 10, "failed": 2},
        errors=[{"record": "cus_7", "error": "2 records failed"}],
        message="finished with 2 failed records",
    )
    browser = await dash.signed_in("read")
    text = assert_page(await browser.get(f"/runs/{run_id}"), f"Run {run_id}")
    assert "Run 1 of customers" in text
    assert 'data-live-count="read">12<' in text and 'data-live-count="failed">2<' in text
    assert "finished with 2 failed records" in text and "2 records failed" in text
    assert "cus_7" in text and "email: not an email" in text


async def test_a_job_page_follows_a_running_job_and_its_state(dash: Dash) -> None:
    job = dash.queue.enqueue(pipeline_job("customers"))
    browser = await dash.signed_in("read")
    text = assert_page(await browser.get(f"/jobs/{job.id}"), f"Job {job.id}")
    assert f'data-live="/jobs/{job.id}/state"' in text
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in text
    state = await browser.get(f"/jobs/{job.id}/state")
    assert state.status_code == 200 and state.headers["cache-control"] == "no-store"
    assert state.json() == {
        "id": job.id,
        "status": "queued",
        "done": False,
        "attempts": 0,
        "run_status": None,
        "counts": None,
    }
    dash.queue.cancel(job.id)
    text = assert_page(await browser.get(f"/jobs/{job.id}"), f"Job {job.id}")
    assert "data-live=" not in text and "refresh" not in text
    assert (await browser.get(f"/jobs/{job.id}/state")).json()["done"] is True


async def test_a_delivery_page_shows_the_payload_headers_and_history(dash: Dash) -> None:
    delivery = add_delivery(
        dash.store,
        headers={"webhook-id": "evt_1", "x-api-key": "a-key-someone-stored"},
        body=b'{"type":"order.created","order":{"id":7,"name":"Zo\xc3\xab"}}',
    )
    binary = add_delivery(dash.store, body=b"\x89PNG\r\n\x1a\n\x00\xff")
    browser = await dash.signed_in("write")
    text = assert_page(await browser.get(f"/deliveries/{delivery}"), f"Delivery {delivery}")
    assert "the handler is told to fail" in text
    assert "&#34;name&#34;: &#34;Zoë&#34;" in text, "pretty-printed, escaped"
    assert "a-key-someone-stored" not in text, "a credential-looking header is masked"
    assert f'action="/deliveries/{delivery}/replay"' in text
    text = assert_page(await browser.get(f"/deliveries/{binary}"), f"Delivery {binary}")
    assert "not text: base64" in text and "iVBORw0KGgoA/w==" in text


async def test_a_conflict_page_shows_both_sides_field_by_field(dash: Dash) -> None:
    conflict = add_open_conflict(
        dash.store,
        source={"email": "a@example.com", "company": "Shop Ltd", "phone": None},
        target={"email": "a@example.com", "company": "Commerce GmbH", "tags": ["x"]},
    )
    browser = await dash.signed_in("write")
    text = assert_page(await browser.get(f"/conflicts/{conflict}"), f"Conflict {conflict}")
    rows = re.findall(r"<tr( class=\"differs\")?>\s*<th scope=\"row\">(\w+)", text)
    assert rows == [
        (' class="differs"', "company"),
        ("", "email"),
        ("", "phone"),
        (' class="differs"', "tags"),
    ]
    assert "Shop Ltd" in text and "Commerce GmbH" in text and "[&#34;x&#34;]" in text
    assert text.count('name="take"') == 2


async def test_the_metrics_pages(dash: Dash) -> None:
    browser = await dash.signed_in("read")
    missing = assert_page(await browser.get("/metrics"), "Metrics")
    assert "no such table" in missing or "run its pipeline" in missing or "orders" in missing
    fill_orders(dash.store.engine)
    text = assert_page(await browser.get("/metrics?period=7d"), "Metrics")
    assert text.count('<rect class="bar"') == 5
    one = assert_page(await browser.get("/metrics/orders_per_day"), "Metric orders_per_day")
    assert '<table class="metric-table">' in one and 'aria-current="true">Last 7 days' in one
    assert 'rel="prev"' in one and 'rel="next"' not in one, "no next period after today"
    lines = await browser.get("/metrics/orders_per_day?chart=line&period=30d")
    assert lines.text.count('<circle class="point"') == 30 * 3


@pytest.mark.parametrize(
    "query",
    ["period=8d", "chart=pie", "from=yesterday", "to=2026-02-30", "colour=blue"],
)
async def test_metric_parameters_are_checked(dash: Dash, query: str) -> None:
    browser = await dash.signed_in("read")
    answer = await browser.get(f"/metrics/orders_per_day?{query}")
    assert_page(answer, "Not understood", 422)


async def test_what_does_not_exist_is_a_404_page(dash: Dash) -> None:
    browser = await dash.signed_in("read")
    for path in (
        "/runs/999",
        "/jobs/999",
        "/deliveries/999",
        "/conflicts/999",
        "/metrics/nope",
        f"/runs/{2**70}",
    ):
        assert_page(await browser.get(path), "Not found", 404)
    nothing = await browser.get("/runs/abc")
    assert nothing.status_code == 404


async def test_static_files_are_cached_and_named_by_their_content(dash: Dash) -> None:
    browser = await dash.signed_in("read")
    text = (await browser.get("/")).text
    for name, kind in (("dashboard.css", "text/css"), ("dashboard.js", "javascript")):
        found = re.search(rf'/static/{re.escape(name)}\?v=([0-9a-f]{{16}})"', text)
        assert found is not None, name
        answer = await browser.get(f"/static/{name}?v={found.group(1)}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"]
        assert answer.headers["cache-control"] == STATIC_CACHE
        assert answer.headers["x-content-type-options"] == "nosniff"
    stranger = dash.browser()
    assert (await stranger.get("/static/dashboard.css")).status_code == 200, "no session needed"
    assert (await stranger.get("/static/../_render.py")).status_code == 404
    icon = await stranger.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"


async def test_head_works_and_the_api_is_untouched(dash: Dash) -> None:
    browser = await dash.signed_in("read")
    head = await browser.client.head("/")
    assert head.status_code == 200 and head.content == b""
    api = await browser.client.get("/api/v1/jobs")
    assert api.status_code == 401, "a dashboard session is no API key"
    assert api.json()["error"]["code"] == "UNAUTHORIZED"
    # The API's answers keep the middleware's own headers: only pages set theirs.
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["cache-control"] == "no-store"
    assert api.headers["referrer-policy"] == "no-referrer"
    docs = await browser.client.get("/api/v1/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
