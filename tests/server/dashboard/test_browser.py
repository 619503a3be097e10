"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
server (`create_app(config, worker=True)` on 127.0.0.1) in front of the sandbox suite.

Signing in (and a wrong key refused), switching a connection off and on, running a
pipeline from the keyboard and watching its job finish, replaying a failed webhook
delivery, a chart with its bars and values, connecting an account through the provider,
a read key without buttons (its forged POST refused), a POST without the CSRF token, signing
out, and the overview on a phone. Every page is checked for console errors (a CSP
violation is one) and screenshots go to .artifacts/screenshots/.

Without /usr/bin/chromium the tests skip, except under CI (the CI variable set), where
they fail: CI installs the browser.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.oauth import describe_connections
from interlink.sandbox import (
    FaultConfig,
    OAuthClient,
    OAuthProvider,
    SandboxServer,
    create_sandbox_app,
    create_shop_app,
)
from interlink.server import create_app
from interlink.server.dashboard import DASHBOARD_CSP
from interlink.store import Store, create_api_key, deliveries
from interlink.webhooks import sign

from . import handlers
from .conftest import CLIENT, SECRET, SLOW_TOKEN, dashboard_config, fill_orders, with_dashboard

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / ".artifacts" / "screenshots"
WAIT_MS = 20_000


def _need_browser() -> Any:
    """Playwright's sync API, or skip (fail under CI) with the reason."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            from playwright import sync_api
        except ImportError:
            missing = "playwright is not installed (pip install playwright)"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the browser tests: {missing}")
        pytest.skip(missing)
    return sync_api


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    url: str
    config: InterlinkConfig
    store: Store
    keys: dict[str, str]
    browser: Any


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    sync_api = _need_browser()
    folder = tmp_path_factory.mktemp("dashboard")
    port = _free_port()
    provider = OAuthProvider()
    provider.clients[CLIENT] = OAuthClient(
        CLIENT, SECRET, f"http://127.0.0.1:{port}/connect/provider/callback"
    )
    suite = create_sandbox_app(
        records=30, commerce_records=10, commerce_overlap=3, provider=provider
    )
    # Every page of this shop takes 0.3 s: its 20 customers, 5 a page, take over a second.
    slow = create_shop_app(
        records=20, token=SLOW_TOKEN, faults=FaultConfig(slow_rate=1.0, slow_seconds=0.3)
    )
    with SandboxServer(suite) as sandbox, SandboxServer(slow) as slow_shop:
        config = dashboard_config(
            f"sqlite:///{folder / 'interlink.db'}",
            sandbox.url,
            callback_port=port,
            slow_shop=slow_shop.url,
        )
        store = Store.open(config.database)
        fill_orders(store.engine)
        keys = {
            scope: create_api_key(store.engine, f"{scope} key", scope).secret
            for scope in ("read", "write")
        }
        app = with_dashboard(create_app(config, store=store, worker=True))
        with SandboxServer(app, port=port) as server, sync_api.sync_playwright() as playwright:
            _check_headers(server.url)
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless=new"]
            )
            try:
                yield Stack(server.url, config, store, keys, browser)
            finally:
                browser.close()
        store.close()


def _check_headers(url: str) -> None:
    """Fail at once, rather than after every page's timeout, when the server does not
    send the dashboard's own policy (the security middleware must keep it)."""
    answer = httpx.get(f"{url}/login")
    if answer.headers.get("content-security-policy") != DASHBOARD_CSP:
        pytest.fail(
            "the dashboard's Content-Security-Policy was replaced by "
            f"{answer.headers.get('content-security-policy')!r}: the security middleware "
            "(server/_security.py) must keep the policy a page sets"
        )


@pytest.fixture
def open_page(stack: Stack) -> Iterator[Any]:
    """`open_page(width=, height=)`: a page in a fresh browser context (no cookies) that
    accepts confirm dialogs; console errors are collected and fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def factory(width: int = 1280, height: int = 800) -> Any:
        context = stack.browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("dialog", lambda dialog: dialog.accept())
        page.on(
            "console",
            lambda message: (
                errors.append(f"{message.text} ({message.location.get('url')})")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield factory
    for context in contexts:
        context.close()
    # A wrong key's sign-in answers 401 and a refused POST 403: Chromium logs those loads.
    unexpected = [e for e in errors if not re.search(r"status of (401|403)", e)]
    assert not unexpected, f"console errors: {unexpected}"


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _sign_in(page: Any, stack: Stack, scope: str = "write") -> None:
    page.goto(f"{stack.url}/")
    assert page.url.startswith(f"{stack.url}/login")
    page.get_by_label("API key").fill(stack.keys[scope])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview", level=1).wait_for()


def _connection(stack: Stack, name: str) -> dict[str, Any]:
    listed = describe_connections(stack.config, stack.store.engine)
    return next(c for c in listed if c["name"] == name)


def test_signing_in_and_a_wrong_key_refused(stack: Stack, open_page: Any) -> None:
    page = open_page()
    page.goto(f"{stack.url}/metrics")
    assert page.url.startswith(f"{stack.url}/login?next=")
    assert page.title() == "Sign in · interlink"
    page.get_by_label("API key").fill("il_wrongkey_" + "x" * 43)
    with page.expect_response(f"{stack.url}/login") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    alert = page.get_by_role("alert")
    assert "not accepted" in alert.inner_text()
    _shot(page, "signin-refused")

    page.get_by_label("API key").fill(stack.keys["write"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Metrics", level=1).wait_for()
    assert page.url == f"{stack.url}/metrics", "back where it was going"
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["interlink_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert stack.keys["write"] not in page.content()


def test_switching_a_connection_off_and_on(stack: Stack, open_page: Any) -> None:
    page = open_page()
    _sign_in(page, stack)
    card = page.locator("#connection-shop")
    card.get_by_role("button", name="Switch off shop").click()
    page.get_by_role("status").filter(has_text="Switched off.").wait_for()
    card = page.locator("#connection-shop")
    assert card.locator(".badge-off").inner_text() == "off"
    assert "dashboard: api key" in card.inner_text()
    assert _connection(stack, "shop")["enabled"] is False
    _shot(page, "connection-off")

    card.get_by_role("button", name="Switch on shop").click()
    page.get_by_role("status").filter(has_text="Switched on.").wait_for()
    assert page.locator("#connection-shop .badge-on").inner_text() == "on"
    assert _connection(stack, "shop")["enabled"] is True


def test_run_now_from_the_keyboard_and_the_job_page_follows_it(
    stack: Stack, open_page: Any
) -> None:
    page = open_page()
    _sign_in(page, stack)
    target = page.get_by_role("button", name="Run now slow_customers", exact=True)
    for _ in range(200):  # Tab through the page until the button has the focus
        page.keyboard.press("Tab")
        if target.evaluate("button => button === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the run-now button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    assert page.title().startswith("Job ")
    # The job is still queued or running: the page follows it (static/dashboard.js).
    assert page.locator("body[data-live]").count() == 1
    assert page.locator("[data-live-field=status]").inner_text() in ("queued", "running")
    _shot(page, "job-running")
    page.locator("[data-live-field=status]").filter(has_text="completed").wait_for()
    page.locator(".facts").get_by_text("succeeded", exact=True).wait_for()
    assert page.locator("body[data-live]").count() == 0, "a finished job is not followed"
    assert page.locator("[data-live-count=read]").inner_text() == "20"
    assert page.locator("[data-live-count=created]").inner_text() == "20"
    assert page.locator("[data-live-count=pages]").inner_text() in ("4", "5")
    _shot(page, "job-completed")
    page.get_by_role("link", name=re.compile(r"^run \d+$")).click()
    page.get_by_role("heading", name=re.compile(r"^Run \d+ of slow_customers")).wait_for()
    assert page.locator(".badge-succeeded").count() >= 1


def _deliver(stack: Stack) -> int:
    """A signed delivery to the server's webhook route, processed until it failed."""
    source = stack.config.webhooks["shop"]
    body = b'{"id":"evt_browser","type":"order.created","order":{"id":41}}'
    headers = sign(source, body, timestamp=int(time.time()), delivery_id=f"evt_{time.time()}")
    answer = httpx.post(f"{stack.url}/api/v1/webhooks/shop", content=body, headers=headers)
    assert answer.status_code < 300, answer.text
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        with stack.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(deliveries.c.id, deliveries.c.status).order_by(deliveries.c.id.desc())
            ).first()
        if row is not None and row.status == "failed":
            return int(row.id)
        time.sleep(0.1)
    pytest.fail("the delivery never failed")


def test_replaying_a_failed_delivery(stack: Stack, open_page: Any) -> None:
    handlers.FAILING["on"] = True
    delivery = _deliver(stack)
    handlers.FAILING["on"] = False  # the handler is fixed: the replay goes through
    try:
        page = open_page()
        _sign_in(page, stack)
        page.get_by_role("link", name=f"delivery {delivery}", exact=True).click()
        assert page.locator(".facts .badge-failed").inner_text() == "failed"
        assert "the handler is told to fail" in page.locator(".message").inner_text()
        assert '"id": 41' in page.locator("pre.payload").inner_text()
        page.get_by_role("button", name="Replay").click()
        page.get_by_role("status").filter(has_text="Queued again").wait_for()
        for _ in range(100):
            if page.locator(".facts .badge-processed").count():
                break
            time.sleep(0.2)
            page.reload()
        else:
            pytest.fail("the replayed delivery was never processed")
        _shot(page, "delivery-replayed")
    finally:
        handlers.FAILING["on"] = True


def test_a_chart_shows_its_bars_and_values(stack: Stack, open_page: Any) -> None:
    page = open_page()
    _sign_in(page, stack)
    page.goto(f"{stack.url}/metrics/orders_per_day?period=7d")
    bars = page.locator("svg.chart rect.bar")
    # Today: 3 paid, 1 new; yesterday: 2 paid; three days ago: 1 new, 1 refunded.
    assert bars.count() == 5
    values = sorted(
        (bar.get_attribute("data-group"), int(bar.get_attribute("data-value")))
        for bar in bars.all()
    )
    assert values == [("new", 1), ("new", 1), ("paid", 2), ("paid", 3), ("refunded", 1)]
    assert page.locator(".period strong").inner_text() == "8"
    assert page.locator("table.metric-table tbody tr").count() == 7
    legend = page.locator("svg.chart .legend-item")
    assert sorted(item.get_attribute("data-group") for item in legend.all()) == [
        "new",
        "paid",
        "refunded",
    ]
    _shot(page, "metric-bars")

    page.get_by_role("link", name="Lines").click()
    page.wait_for_url(re.compile(r".*chart=line.*"))
    assert page.locator("svg.chart circle.point").count() == 7 * 3
    page.get_by_role("link", name="← Previous period").click()
    page.wait_for_url(re.compile(r".*from=\d{4}-\d\d-\d\d&to=.*"))
    # The week before holds nothing (the order 20 days ago is earlier still).
    assert page.locator(".period strong").inner_text() == "0"
    page.get_by_role("link", name="Last 30 days").click()
    assert page.locator(".period strong").inner_text() == "9"
    _shot(page, "metric-lines-30d")


def test_connecting_an_account_through_the_provider(stack: Stack, open_page: Any) -> None:
    page = open_page()
    _sign_in(page, stack)
    card = page.locator("#connection-provider")
    card.get_by_label("Account name").fill("acct_1001")
    card.get_by_role("button", name="Connect an account to provider").click()
    # The ticket page sends the browser on to the provider, which consents and sends it
    # back to this server's callback.
    page.get_by_role("heading", name="Connected").wait_for()
    assert "acct_1001" in page.content()
    page.goto(f"{stack.url}/")
    accounts = page.locator("#connection-provider .accounts")
    assert "acct_1001" in accounts.inner_text()
    assert accounts.locator(".badge-active").count() == 1


def test_a_read_key_sees_no_buttons_and_its_forged_post_is_refused(
    stack: Stack, open_page: Any
) -> None:
    page = open_page()
    _sign_in(page, stack, "read")
    assert page.get_by_role("button").all_inner_texts() == ["Sign out"]
    before = page.locator("#jobs-title + ul").inner_text()
    status = page.evaluate(
        """async () => {
            const csrf = document.querySelector("input[name=csrf]").value;
            const answer = await fetch("/pipelines/customers/run", {
                method: "POST",
                headers: {"Content-Type": "application/x-www-form-urlencoded"},
                body: "csrf=" + encodeURIComponent(csrf),
            });
            return answer.status;
        }"""
    )
    assert status == 403
    page.reload()
    assert page.locator("#jobs-title + ul").inner_text() == before, "no job was queued"


def test_a_post_without_the_csrf_token_is_refused(stack: Stack, open_page: Any) -> None:
    page = open_page()
    _sign_in(page, stack)
    status = page.evaluate(
        """async () => (await fetch("/connections/shop/disable", {
            method: "POST",
            headers: {"Content-Type": "application/x-www-form-urlencoded"},
            body: "reason=forged",
        })).status"""
    )
    assert status == 403
    assert _connection(stack, "shop")["enabled"] is True


def test_signing_out_ends_the_session(stack: Stack, open_page: Any) -> None:
    page = open_page()
    _sign_in(page, stack)
    session = next(c for c in page.context.cookies() if c["name"] == "interlink_session")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("status").filter(has_text="You are signed out.").wait_for()
    page.goto(f"{stack.url}/")
    assert page.url.startswith(f"{stack.url}/login")
    # The old cookie, put back, opens nothing: the session is gone on the server.
    page.context.add_cookies([session])
    page.goto(f"{stack.url}/")
    assert page.url.startswith(f"{stack.url}/login")


def test_the_overview_fits_a_phone_and_a_laptop(stack: Stack, open_page: Any) -> None:
    for name, width, height in (("phone", 375, 667), ("laptop", 1280, 800)):
        page = open_page(width, height)
        _sign_in(page, stack)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{name}: the overview scrolls sideways: {widths}"
        _shot(page, f"overview-{name}")
        page.goto(f"{stack.url}/metrics/orders_per_day")
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{name}: the metric page scrolls sideways: {widths}"
        _shot(page, f"metric-{name}")


_UNNAMED = """() => {
    const unnamed = [];
    for (const el of document.querySelectorAll("input:not([type=hidden]), button, a[href]")) {
        const name = el.tagName === "INPUT"
            ? Array.from(el.labels || []).map((l) => l.innerText).join(" ")
            : el.innerText || el.getAttribute("aria-label") || "";
        if (!name.trim()) unnamed.push(el.outerHTML.slice(0, 80));
    }
    return unnamed;
}"""


def test_pages_have_a_title_one_heading_and_named_controls(stack: Stack, open_page: Any) -> None:
    page = open_page()
    _sign_in(page, stack)
    paths = ["/", "/metrics", "/metrics/orders_per_day", "/login?next=/"]
    links = page.locator("main a[href^='/jobs/'], main a[href^='/runs/']")
    paths += [links.nth(i).get_attribute("href") for i in range(min(2, links.count()))]
    for path in paths:
        page.goto(f"{stack.url}{path}")
        assert page.title().endswith(" · interlink"), path
        assert page.locator("h1").count() == 1, path
        assert page.locator("main").count() == 1, path
        assert page.evaluate(_UNNAMED) == [], path
    # The focus is visible: a focused control gets an outline of its own.
    page.goto(f"{stack.url}/")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => [document.activeElement.innerText, "
        "getComputedStyle(document.activeElement).outlineStyle, "
        "getComputedStyle(document.activeElement).outlineWidth]"
    )
    assert focused[0] == "Skip to the content"
    assert focused[1] == "solid" and focused[2] == "3px"
