"""Signing in and out of the dashboard over HTTP: the cookie's flags, one message for every
refused key, failed sign-ins throttled with the API's per-address limit, the form's own
token, where the browser goes afterwards, and sessions that end (expired, signed out, the
key revoked)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx
import sqlalchemy as sa

from interlink.store import dashboard_sessions, revoke_api_key

from .conftest import ORIGIN, Dash, DashFactory, csrf_of


def _set_cookies(answer: httpx.Response) -> dict[str, SimpleCookie]:
    found: dict[str, SimpleCookie] = {}
    for header in answer.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


async def test_pages_send_a_stranger_to_the_sign_in_form(dash: Dash) -> None:
    browser = dash.browser()
    for path, target in (
        ("/", "/login"),
        ("/metrics?period=7d", "/login?next=%2Fmetrics%3Fperiod%3D7d"),
        ("/jobs/1", "/login?next=%2Fjobs%2F1"),
    ):
        answer = await browser.get(path)
        assert answer.status_code == 303, (path, answer.text)
        assert answer.headers["location"] == target
    state = await browser.get("/jobs/1/state", headers={"Accept": "application/json"})
    assert state.status_code == 401 and state.json()["status"] == "error"
    form = await browser.get("/login")
    assert form.status_code == 200
    assert "<title>Sign in · interlink</title>" in form.text
    assert 'type="password"' in form.text and '<label for="key">API key</label>' in form.text


async def test_a_valid_key_signs_in_with_a_lax_httponly_cookie(dash: Dash) -> None:
    browser = dash.browser()
    form = await browser.get("/login?next=/metrics")
    login_cookie = _set_cookies(form)["interlink_login"]["interlink_login"]
    assert login_cookie["httponly"] and login_cookie["samesite"] == "strict"
    assert login_cookie["path"] == "/login"
    answer = await browser.post(
        "/login",
        {"key": dash.keys["read"].secret, "csrf": csrf_of(form.text), "next": "/metrics"},
        csrf=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/metrics"
    session = _set_cookies(answer)["interlink_session"]["interlink_session"]
    assert session["httponly"] and session["samesite"] == "lax" and session["path"] == "/"
    assert not session["secure"], "plain http here: Secure would lose the cookie"
    assert int(session["max-age"]) == 7 * 86400
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session.value)
    page = await browser.get("/metrics")
    assert page.status_code == 200
    assert dash.keys["read"].secret not in page.text and session.value not in page.text
    with dash.store.engine.connect() as conn:
        stored = conn.execute(sa.select(dashboard_sessions)).all()
    assert len(stored) == 1 and session.value not in str(stored[0])
    again = await browser.get("/login")
    assert again.status_code == 303 and again.headers["location"] == "/"
    # Signing in again in the same browser (a form opened before) ends its old session.
    browser.client.cookies.delete("interlink_session")
    form = await browser.get("/login")
    browser.client.cookies.set("interlink_session", session.value, domain="interlink.test")
    fields = {"key": dash.keys["write"].secret, "csrf": csrf_of(form.text)}
    assert (await browser.post("/login", fields, csrf=False)).status_code == 303
    with dash.store.engine.connect() as conn:
        assert len(conn.execute(sa.select(dashboard_sessions)).all()) == 1


async def test_every_refused_key_gets_the_same_message(dash: Dash) -> None:
    revoke_api_key(dash.store.engine, dash.keys["admin"].key.id)
    texts = set()
    for secret in ("", "nonsense", "il_abcdefgh_" + "x" * 43, dash.keys["admin"].secret):
        browser = dash.browser()
        answer = await browser.sign_in(secret)
        assert answer.status_code == 401, answer.text
        assert "interlink_session" not in answer.headers.get("set-cookie", "")
        found = re.search(r'<p class="error" role="alert"[^>]*>([^<]+)</p>', answer.text)
        assert found is not None
        texts.add(found.group(1))
        assert secret not in answer.text or not secret
    assert texts == {"That API key was not accepted. Check it and try again."}


async def test_failed_sign_ins_spend_the_anonymous_limit_when_one_is_set(
    make_dash: DashFactory,
) -> None:
    """With `anonymous` configured, sign-ins spend from it as the API's keyless requests
    do (they had spent from `default`, a bucket and a limit of their own)."""
    dash = await make_dash(server={"rate_limits": {"default": "50/min", "anonymous": "2/min"}})
    browser = dash.browser()
    statuses = [(await browser.sign_in("il_wrong_" + "y" * 43)).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


async def test_failed_sign_ins_spend_the_apis_per_address_limit(make_dash: DashFactory) -> None:
    dash = await make_dash(server={"rate_limits": {"default": "3/min"}})
    browser = dash.browser()
    statuses = [(await browser.sign_in("il_wrong_" + "y" * 43)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    throttled = await browser.sign_in("il_wrong_" + "y" * 43)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    assert "Too many failed sign-ins from this address" in throttled.text
    # The same bucket as the API's failed keys: the API refuses this address too now.
    api = await dash.browser().client.get(
        "/api/v1/jobs", headers={"Authorization": "Bearer il_wrong_" + "z" * 43}
    )
    assert api.status_code == 429
    # A valid key is never refused for what others did from its address.
    assert (await dash.browser().sign_in(dash.keys["read"].secret)).status_code == 303


async def test_the_sign_in_form_needs_its_own_token_and_this_origin(dash: Dash) -> None:
    browser = dash.browser()
    form = await browser.get("/login")
    token = csrf_of(form.text)
    secret = dash.keys["write"].secret
    for fields, origin, status in (
        ({"key": secret}, ORIGIN, 403),  # no form token
        ({"key": secret, "csrf": "x" * 43}, ORIGIN, 403),  # not the cookie's
        ({"key": secret, "csrf": token}, "https://evil.example", 403),
        ({"key": secret, "csrf": token}, None, 403),  # neither Origin nor Referer
    ):
        answer = await browser.post("/login", fields, csrf=False, origin=origin)
        assert answer.status_code == status, (fields, origin, answer.text)
        assert "interlink_session" not in answer.headers.get("set-cookie", "")
    stranger = dash.browser()  # no form cookie at all
    answer = await stranger.post("/login", {"key": secret, "csrf": token}, csrf=False)
    assert answer.status_code == 403
    fresh = csrf_of((await browser.get("/login")).text)  # each answer sets a new form token
    referer = await browser.post(
        "/login",
        {"key": secret, "csrf": fresh},
        csrf=False,
        origin=None,
        headers={"Referer": f"{ORIGIN}/login"},
    )
    assert referer.status_code == 303, "a Referer of this host will do without Origin"


async def test_next_never_leads_to_another_site(dash: Dash) -> None:
    for target, expected in (
        ("/runs/3", "/runs/3"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/login", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
    ):
        browser = dash.browser()
        answer = await browser.sign_in(dash.keys["read"].secret, next_=target)
        assert answer.status_code == 303 and answer.headers["location"] == expected, target


async def test_signing_out_needs_the_form_token_and_ends_the_session(dash: Dash) -> None:
    browser = await dash.signed_in("read")
    refused = await browser.post("/logout", csrf=False)
    assert refused.status_code == 403
    assert (await browser.get("/")).status_code == 200, "still signed in"
    answer = await browser.post("/logout")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?notice=signed-out"
    gone = _set_cookies(answer)["interlink_session"]["interlink_session"]
    assert gone.value == "" and gone["max-age"] == "0"
    with dash.store.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(dashboard_sessions)).scalar() == 0
        )
    notice = await browser.get("/login?notice=signed-out")
    assert '<p class="notice" role="status">You are signed out.</p>' in notice.text


async def test_a_session_ends_when_its_key_is_revoked_or_it_expires(dash: Dash) -> None:
    browser = await dash.signed_in("write")
    revoke_api_key(dash.store.engine, dash.keys["write"].key.id)
    answer = await browser.get("/")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert 'interlink_session=""' in answer.headers["set-cookie"]

    for column, age in (("seen_at", 12 * 3600 + 1), ("created_at", 7 * 86400 + 1)):
        browser = await dash.signed_in("read")
        assert (await browser.get("/")).status_code == 200
        with dash.store.engine.begin() as conn:
            conn.execute(
                sa.update(dashboard_sessions).values(
                    {column: getattr(dashboard_sessions.c, column) - age}
                )
            )
        assert (await browser.get("/")).status_code == 303, column
