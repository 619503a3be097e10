"""The sandbox's OAuth2 provider, over real sockets: code flow with PKCE, rotation, revocation.

Every test talks to a `SandboxServer` through httpx, as a client of a real provider would.
PKCE values are computed here with hashlib, independently of the provider's own code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from interlink.sandbox import (
    DEFAULT_CLIENT,
    OAuthAccount,
    OAuthClient,
    OAuthProvider,
    SandboxServer,
    create_oauth_provider_app,
    create_sandbox_app,
    service_urls,
)

CLIENT = DEFAULT_CLIENT
OTHER = OAuthClient("other-client", "other-secret", "https://other.example/callback")
ACCOUNTS = (OAuthAccount("acct_a", "Alpha GmbH", 7), OAuthAccount("acct_b", "Beta Ltd", 12))

Serve = Callable[..., tuple[SandboxServer, OAuthProvider]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a provider app on a free port with `OAuthProvider(**options)`."""
    servers: list[SandboxServer] = []

    def start(**options: Any) -> tuple[SandboxServer, OAuthProvider]:
        options.setdefault("clients", (CLIENT, OTHER))
        options.setdefault("accounts", ACCOUNTS)
        provider = OAuthProvider(**options)
        server = SandboxServer(create_oauth_provider_app(provider))
        server.start()
        servers.append(server)
        return server, provider

    yield start
    for server in servers:
        server.stop()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(url: str, *, client: OAuthClient = CLIENT, **overrides: str | None) -> httpx.Response:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "state": "st-123",
        "scope": "read",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        **overrides,
    }
    sent = {name: value for name, value in params.items() if value is not None}
    return httpx.get(f"{url}/oauth/authorize", params=sent, follow_redirects=False)


def redirect_params(response: httpx.Response, client: OAuthClient = CLIENT) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(client.redirect_uri + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def get_code(url: str, client: OAuthClient = CLIENT, **overrides: str) -> tuple[str, str]:
    """A fresh code and its PKCE verifier."""
    verifier, challenge = pkce()
    params = redirect_params(
        authorize(url, client=client, code_challenge=challenge, **overrides), client
    )
    return params["code"], verifier


def token_request(
    url: str,
    form: dict[str, str],
    client: OAuthClient = CLIENT,
    method: str = "basic",
) -> httpx.Response:
    if method == "basic":
        return httpx.post(
            f"{url}/oauth/token", data=form, auth=(client.client_id, client.client_secret)
        )
    body = {**form, "client_id": client.client_id, "client_secret": client.client_secret}
    return httpx.post(f"{url}/oauth/token", data=body)


def exchange(
    url: str, code: str, verifier: str | None, client: OAuthClient = CLIENT, **extra: str
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return token_request(url, {**form, **extra}, client)


def connect(url: str, client: OAuthClient = CLIENT, **overrides: str) -> dict[str, Any]:
    """The whole code flow: authorize, then exchange the code with its verifier."""
    code, verifier = get_code(url, client, **overrides)
    response = exchange(url, code, verifier, client)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(
    url: str, refresh_token: str, client: OAuthClient = CLIENT, **extra: str
) -> httpx.Response:
    return token_request(
        url, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}, client
    )


def api(url: str, access_token: str, path: str = "/api/customers") -> httpx.Response:
    return httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {access_token}"})


def assert_grant_error(response: httpx.Response, error: str = "invalid_grant") -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error, response.text
    assert response.headers["cache-control"] == "no-store"


# -- the authorization-code flow -----------------------------------------------------------


def test_full_code_flow_with_pkce(serve: Serve) -> None:
    server, provider = serve(account_key="stripe_user_id", access_token_lifetime=900)
    verifier, challenge = pkce()
    response = authorize(server.url, code_challenge=challenge, scope="read write")
    assert response.headers["cache-control"] == "no-store"
    params = redirect_params(response)
    assert params["state"] == "st-123"
    assert params["iss"] == server.url
    assert params["code"].startswith("code_")

    answer = exchange(server.url, params["code"], verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "stripe_user_id",
    }
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 900, "read write")
    assert body["stripe_user_id"] == "acct_a"

    me = api(server.url, body["access_token"], "/api/me")
    assert me.json() == {
        "id": "acct_a",
        "name": "Alpha GmbH",
        "scope": "read write",
        "client_id": CLIENT.client_id,
    }
    listing = api(server.url, body["access_token"]).json()
    assert listing["total"] == 7 and len(listing["data"]) == 7
    page = api(server.url, body["access_token"], "/api/customers?offset=5&limit=5").json()
    assert [record["id"] for record in page["data"]] == [6, 7]

    stats = httpx.get(f"{server.url}/_stats").json()["oauth"]
    assert stats["codes_issued"] == stats["codes_redeemed"] == 1
    assert stats["access_tokens_issued"] == 1
    assert provider.stats.codes_redeemed == 1


def test_accounts_are_told_apart_by_login_hint_or_consent_account(serve: Serve) -> None:
    server, provider = serve()
    alpha = connect(server.url)
    beta = connect(server.url, login_hint="acct_b")
    assert (alpha["account_id"], beta["account_id"]) == ("acct_a", "acct_b")
    alpha_rows = api(server.url, alpha["access_token"]).json()
    beta_rows = api(server.url, beta["access_token"]).json()
    assert (alpha_rows["total"], beta_rows["total"]) == (7, 12)
    # Each account has data of its own, not a copy of the other's.
    assert alpha_rows["data"][0]["email"] != beta_rows["data"][0]["email"]

    response = httpx.post(f"{server.url}/_consent", json={"account": "acct_b"})
    assert response.json() == {"consent": "approve", "account": "acct_b"}
    assert connect(server.url)["account_id"] == "acct_b"


def test_redirect_uri_must_match_exactly_and_is_never_used_when_wrong(serve: Serve) -> None:
    server, provider = serve()
    for wrong in (CLIENT.redirect_uri + "/", CLIENT.redirect_uri + "?x=1", OTHER.redirect_uri):
        response = authorize(server.url, redirect_uri=wrong)
        assert response.status_code == 400, wrong
        assert "location" not in response.headers
        assert response.json()["error"] == "invalid_request"
    unknown = authorize(server.url, client_id="nobody")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_client"
    assert provider.stats.codes_issued == 0
    # With one registered URI, leaving redirect_uri out is allowed (RFC 6749 §3.1.2.3).
    params = redirect_params(authorize(server.url, redirect_uri=None))
    assert "code" in params


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": "read admin"}, "invalid_scope"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"login_hint": "acct_unknown"}, "access_denied"),
    ],
)
def test_authorize_errors_go_back_to_the_client(
    serve: Serve, overrides: dict[str, Any], error: str
) -> None:
    server, provider = serve()
    params = redirect_params(authorize(server.url, **overrides))
    assert params["error"] == error
    assert params["state"] == "st-123" and params["iss"] == server.url
    assert "code" not in params
    assert provider.stats.authorizations_denied == 1 and provider.stats.codes_issued == 0


def test_consent_knob_denies_access(serve: Serve) -> None:
    server, provider = serve()
    assert httpx.post(f"{server.url}/_consent", json={"consent": "deny"}).status_code == 200
    params = redirect_params(authorize(server.url))
    assert (params["error"], params["state"]) == ("access_denied", "st-123")
    bad = httpx.post(f"{server.url}/_consent", json={"consent": "maybe"})
    assert bad.status_code == 400
    provider.consent = "approve"
    assert "code" in redirect_params(authorize(server.url))


def test_repeated_authorize_parameter_is_refused(serve: Serve) -> None:
    server, _ = serve()
    query: list[tuple[str, str | int | float | bool | None]] = [
        ("response_type", "code"),
        ("client_id", CLIENT.client_id),
        ("redirect_uri", CLIENT.redirect_uri),
        ("code_challenge", pkce()[1]),
        ("code_challenge_method", "S256"),
        ("scope", "read"),
        ("scope", "write"),
    ]
    response = httpx.get(f"{server.url}/oauth/authorize", params=query)
    assert redirect_params(response)["error"] == "invalid_request"


def test_wrong_or_missing_verifier_is_invalid_grant(serve: Serve) -> None:
    server, provider = serve()
    code, verifier = get_code(server.url)
    assert_grant_error(exchange(server.url, code, None))
    assert_grant_error(exchange(server.url, code, pkce()[0]))
    assert provider.stats.pkce_failures == 2 and provider.stats.invalid_grants == 2
    # A failed check does not burn the code: the client holding the verifier can still use it.
    assert exchange(server.url, code, verifier).status_code == 200


def test_verifier_for_a_code_without_challenge_is_refused(serve: Serve) -> None:
    server, provider = serve(require_pkce=False)
    params = redirect_params(authorize(server.url, code_challenge=None, code_challenge_method=None))
    # RFC 9700 §2.1.1: a verifier the code was not bound to is a PKCE downgrade attempt.
    assert_grant_error(exchange(server.url, params["code"], pkce()[0]))
    assert exchange(server.url, params["code"], None).status_code == 200
    assert provider.stats.pkce_failures == 1


def test_reused_code_is_refused_and_revokes_its_tokens(serve: Serve) -> None:
    server, provider = serve()
    code, verifier = get_code(server.url)
    first = exchange(server.url, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert api(server.url, tokens["access_token"]).status_code == 200

    assert_grant_error(exchange(server.url, code, verifier))
    assert api(server.url, tokens["access_token"]).status_code == 401
    assert_grant_error(refresh(server.url, tokens["refresh_token"]))
    assert provider.stats.code_replays == 1 and provider.stats.families_revoked == 1


def test_code_is_bound_to_client_and_redirect_uri(serve: Serve) -> None:
    server, provider = serve()
    code, verifier = get_code(server.url)
    assert_grant_error(exchange(server.url, code, verifier, client=OTHER))
    assert_grant_error(
        exchange(server.url, code, verifier, redirect_uri="http://127.0.0.1:8000/elsewhere")
    )
    assert exchange(server.url, code, verifier).status_code == 200


def test_code_expires_after_its_lifetime(serve: Serve) -> None:
    server, provider = serve(code_lifetime=5)
    code, verifier = get_code(server.url)
    provider.advance(4.9)
    assert exchange(server.url, code, verifier).status_code == 200

    late, late_verifier = get_code(server.url)
    provider.advance(5)
    assert_grant_error(exchange(server.url, late, late_verifier))
    assert provider.stats.codes_expired == 1


def test_default_code_lifetime_is_sixty_seconds(serve: Serve) -> None:
    server, provider = serve()
    code, verifier = get_code(server.url)
    assert httpx.post(f"{server.url}/_clock", json={"advance": 60}).status_code == 200
    assert_grant_error(exchange(server.url, code, verifier))


# -- refresh with rotation -------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(serve: Serve) -> None:
    server, provider = serve()
    tokens = connect(server.url)
    first = refresh(server.url, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["access_token"] != tokens["access_token"]
    assert (rotated["account_id"], rotated["scope"]) == ("acct_a", "read")
    assert api(server.url, rotated["access_token"]).status_code == 200

    second = refresh(server.url, rotated["refresh_token"])
    assert second.status_code == 200
    latest = second.json()
    assert provider.stats.refreshes == 2

    # The token of the first rotation comes back: theft is assumed, the family dies.
    assert_grant_error(refresh(server.url, rotated["refresh_token"]))
    assert provider.stats.refresh_reuses == 1 and provider.stats.families_revoked == 1
    assert_grant_error(refresh(server.url, latest["refresh_token"]))
    unauthorized = api(server.url, latest["access_token"])
    assert unauthorized.status_code == 401
    assert 'error="invalid_token"' in unauthorized.headers["www-authenticate"]
    # Another connection of the same account is not touched.
    other = connect(server.url)
    assert refresh(server.url, other["refresh_token"]).status_code == 200


def test_reuse_can_spare_the_family(serve: Serve) -> None:
    server, provider = serve(revoke_family_on_reuse=False)
    tokens = connect(server.url)
    rotated = refresh(server.url, tokens["refresh_token"]).json()
    assert_grant_error(refresh(server.url, tokens["refresh_token"]))
    assert refresh(server.url, rotated["refresh_token"]).status_code == 200
    assert provider.stats.refresh_reuses == 1 and provider.stats.families_revoked == 0


def test_refresh_is_bound_to_the_client_and_may_narrow_the_scope(serve: Serve) -> None:
    server, provider = serve()
    tokens = connect(server.url, scope="read write")
    assert_grant_error(refresh(server.url, tokens["refresh_token"], client=OTHER))
    assert_grant_error(refresh(server.url, tokens["refresh_token"], scope="admin"), "invalid_scope")
    narrowed = refresh(server.url, tokens["refresh_token"], scope="write")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "write"
    forbidden = api(server.url, narrowed.json()["access_token"])
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
    # The grant keeps its scope: the next refresh may ask for read again.
    again = refresh(server.url, narrowed.json()["refresh_token"], scope="read")
    assert again.status_code == 200 and again.json()["scope"] == "read"


def test_unknown_refresh_token_and_grant_type(serve: Serve) -> None:
    server, _ = serve()
    assert_grant_error(refresh(server.url, "rt_not-a-token"))
    response = token_request(server.url, {"grant_type": "client_credentials"})
    assert_grant_error(response, "unsupported_grant_type")
    assert_grant_error(
        token_request(server.url, {"grant_type": "refresh_token"}), "invalid_request"
    )


def test_concurrent_refreshes_with_one_token_let_exactly_one_win(serve: Serve) -> None:
    server, provider = serve()
    tokens = connect(server.url)
    barrier = threading.Barrier(10)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def race() -> None:
        with httpx.Client() as client:
            form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            auth = (CLIENT.client_id, CLIENT.client_secret)
            barrier.wait()
            response = client.post(f"{server.url}/oauth/token", data=form, auth=auth)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=race) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == 10
    winners = [answer for answer in answers if answer.status_code == 200]
    assert len(winners) == 1, [answer.text for answer in answers]
    for answer in answers:
        if answer.status_code != 200:
            assert_grant_error(answer)
    assert provider.stats.refreshes == 1 and provider.stats.refresh_reuses == 9
    # The losers replayed a rotated token, so the winner's tokens went with the family.
    assert provider.stats.families_revoked == 1
    assert_grant_error(refresh(server.url, winners[0].json()["refresh_token"]))


async def test_concurrent_refreshes_from_one_event_loop(serve: Serve) -> None:
    server, provider = serve(revoke_family_on_reuse=False)
    tokens = connect(server.url)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    auth = (CLIENT.client_id, CLIENT.client_secret)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=10)) as client:
        answers = await asyncio.gather(
            *(client.post(f"{server.url}/oauth/token", data=form, auth=auth) for _ in range(10))
        )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] + [400] * 9
    winner = next(answer for answer in answers if answer.status_code == 200).json()
    # Without family revocation the winner's refresh token stays good.
    assert refresh(server.url, winner["refresh_token"]).status_code == 200


# -- revocation ------------------------------------------------------------------------------


def test_revoking_a_refresh_token_revokes_the_grant(serve: Serve) -> None:
    server, provider = serve()
    tokens = connect(server.url)
    response = httpx.post(
        f"{server.url}/oauth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(CLIENT.client_id, CLIENT.client_secret),
    )
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert_grant_error(refresh(server.url, tokens["refresh_token"]))
    revoked = api(server.url, tokens["access_token"])
    assert revoked.status_code == 401
    assert "revoked" in revoked.headers["www-authenticate"]
    assert provider.stats.revocations == 1 and provider.stats.families_revoked == 1


def test_revoking_an_access_token_keeps_the_refresh_token(serve: Serve) -> None:
    server, provider = serve()
    tokens = connect(server.url)
    # client_secret_post, and no hint.
    response = httpx.post(
        f"{server.url}/oauth/revoke",
        data={
            "token": tokens["access_token"],
            "client_id": CLIENT.client_id,
            "client_secret": CLIENT.client_secret,
        },
    )
    assert response.status_code == 200
    assert api(server.url, tokens["access_token"]).status_code == 401
    assert refresh(server.url, tokens["refresh_token"]).status_code == 200
    assert provider.stats.revocations == 1 and provider.stats.families_revoked == 0


def test_revocation_edge_cases(serve: Serve) -> None:
    server, provider = serve()
    tokens = connect(server.url)
    revoke_url = f"{server.url}/oauth/revoke"
    own = (CLIENT.client_id, CLIENT.client_secret)
    # RFC 7009 §2.2: an unknown token is not an error.
    assert httpx.post(revoke_url, data={"token": "nope"}, auth=own).status_code == 200
    other = httpx.post(
        revoke_url, data={"token": tokens["refresh_token"]}, auth=(OTHER.client_id, "wrong")
    )
    assert other.status_code == 401 and other.json()["error"] == "invalid_client"
    foreign = httpx.post(
        revoke_url,
        data={"token": tokens["refresh_token"]},
        auth=(OTHER.client_id, OTHER.client_secret),
    )
    assert foreign.status_code == 400
    assert httpx.post(revoke_url, data={}, auth=own).status_code == 400
    assert refresh(server.url, tokens["refresh_token"]).status_code == 200
    assert provider.stats.revocations == 0


# -- the protected API -----------------------------------------------------------------------


def test_expired_access_token_is_401_with_www_authenticate(serve: Serve) -> None:
    server, provider = serve(access_token_lifetime=120)
    tokens = connect(server.url)
    assert tokens["expires_in"] == 120
    provider.advance(119)
    assert api(server.url, tokens["access_token"]).status_code == 200
    provider.advance(1)
    expired = api(server.url, tokens["access_token"])
    assert expired.status_code == 401
    challenge = expired.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="provider", error="invalid_token"')
    assert "expired" in challenge
    # The refresh token outlives the access token.
    fresh = refresh(server.url, tokens["refresh_token"]).json()
    assert api(server.url, fresh["access_token"]).status_code == 200

    missing = httpx.get(f"{server.url}/api/customers")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="provider"'
    unknown = api(server.url, "at_unknown")
    assert unknown.status_code == 401 and "unknown" in unknown.headers["www-authenticate"]
    stats = httpx.get(f"{server.url}/_stats").json()
    assert stats["unauthorized"] == 3 and stats["oauth"]["api_unauthorized"] == 2


# -- client authentication -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["basic", "post"])
def test_client_secret_basic_and_post(serve: Serve, method: str) -> None:
    server, provider = serve()
    code, verifier = get_code(server.url)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CLIENT.redirect_uri,
        "code_verifier": verifier,
    }
    wrong = OAuthClient(CLIENT.client_id, "not-the-secret", CLIENT.redirect_uri)
    refused = token_request(server.url, form, wrong, method)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert refused.headers["www-authenticate"] == 'Basic realm="provider"'
    answer = token_request(server.url, form, CLIENT, method)
    assert answer.status_code == 200, answer.text
    rotated = token_request(
        server.url,
        {"grant_type": "refresh_token", "refresh_token": answer.json()["refresh_token"]},
        CLIENT,
        method,
    )
    assert rotated.status_code == 200
    assert provider.stats.invalid_clients == 1


def test_two_client_auth_methods_at_once_are_refused(serve: Serve) -> None:
    server, _ = serve()
    response = httpx.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_secret": "s"},
        auth=(CLIENT.client_id, CLIENT.client_secret),
    )
    assert_grant_error(response, "invalid_request")


# -- admin, the suite, metadata --------------------------------------------------------------


def test_reset_forgets_tokens_and_counters(serve: Serve) -> None:
    server, provider = serve()
    tokens = connect(server.url)
    assert httpx.post(f"{server.url}/_reset").status_code == 200
    assert api(server.url, tokens["access_token"]).status_code == 401
    assert provider.stats.codes_issued == 0
    assert httpx.post(f"{server.url}/_clock", json={"advance": -1}).status_code == 400


def test_grant_issues_tokens_without_the_browser(serve: Serve) -> None:
    server, provider = serve()
    tokens = provider.grant(CLIENT.client_id, "acct_b", "read write")
    assert tokens["account_id"] == "acct_b" and tokens["scope"] == "read write"
    assert api(server.url, tokens["access_token"]).json()["total"] == 12
    with pytest.raises(ValueError, match="unknown"):
        provider.grant(CLIENT.client_id, "acct_zzz")


def test_the_suite_serves_the_provider_under_its_prefix() -> None:
    with SandboxServer(create_sandbox_app(records=10)) as suite:
        urls = service_urls(suite.url)["provider"]
        assert httpx.get(f"{suite.url}/").json()["services"]["provider"] == urls
        verifier, challenge = pkce()
        response = httpx.get(
            urls["authorize_url"],
            params={
                "response_type": "code",
                "client_id": urls["client_id"],
                "redirect_uri": urls["redirect_uri"],
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        params = redirect_params(response)
        assert params["iss"] == urls["url"]
        tokens = httpx.post(
            urls["token_url"],
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": urls["redirect_uri"],
                "code_verifier": verifier,
            },
            auth=(urls["client_id"], urls["client_secret"]),
        ).json()
        listing = httpx.get(
            urls["customers"], headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert listing.status_code == 200 and listing.json()["total"] == 25
        metadata = httpx.get(f"{urls['url']}/.well-known/oauth-authorization-server").json()
        assert metadata["token_endpoint"] == urls["token_url"]
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        assert httpx.get(urls["stats"]).json()["oauth"]["codes_redeemed"] == 1


# -- interlink's own oauth2 auth against the provider ----------------------------------------

PIPELINE_YAML = """
database: ${DATABASE_URL}

connections:
  provider:
    base_url: ${PROVIDER_URL}/api
    auth:
      type: oauth2
      token_url: ${PROVIDER_URL}/oauth/token
      authorize_url: ${PROVIDER_URL}/oauth/authorize
      client_id: provider-client
      client_secret: ${PROVIDER_CLIENT_SECRET}
      auth_method: client_secret_post
      scope: read
      refresh_token: ${PROVIDER_REFRESH_TOKEN}

resources:
  provider:
    customers:
      path: /customers
      records: data
      paginate: {type: offset, page_size: 5}
      incremental: {field: updated_at, param: updated_since}

pipelines:
  provider_customers:
    source: provider.customers
    destination: {sql: provider_customers}
"""


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_interlink_oauth2_auth_reads_and_refreshes_on_expiry(
    serve: Serve, auth_method: str
) -> None:
    from interlink.config import ConnectionConfig
    from interlink.http import OAuth2TokenAuth, client_from_config

    server, provider = serve(access_token_lifetime=3600)
    seed = connect(server.url)
    config = ConnectionConfig.model_validate(
        {
            "base_url": f"{server.url}/api",
            "auth": {
                "type": "oauth2",
                "token_url": f"{server.url}/oauth/token",
                "client_id": CLIENT.client_id,
                "client_secret": CLIENT.client_secret,
                "auth_method": auth_method,
                "refresh_token": seed["refresh_token"],
            },
        }
    )
    async with client_from_config("provider", config) as client:
        auth = client.auth
        assert isinstance(auth, OAuth2TokenAuth)
        # Seeded with a refresh token only: the first request refreshes.
        first = await client.get_json("/customers")
        assert first["total"] == 7
        assert (await client.get_json("/me"))["id"] == "acct_a"
        assert provider.stats.refreshes == 1
        stored = await auth.source.load()
        assert stored is not None and stored.refresh_token != seed["refresh_token"]

        # The provider's clock passes the access token's expiry; interlink still thinks it
        # fresh, gets 401s, and ten concurrent requests share one refresh.
        provider.advance(3600)
        pages = await asyncio.gather(
            *(client.get_json("/customers", params={"offset": n, "limit": 1}) for n in range(10))
        )
        assert [page["offset"] for page in pages] == list(range(10))
        assert provider.stats.refreshes == 2
        assert provider.stats.refresh_reuses == 0 and provider.stats.families_revoked == 0
        assert provider.stats.api_unauthorized >= 1
        rotated = await auth.source.load()
        assert rotated is not None and rotated.refresh_token != stored.refresh_token

    # Rotation really happened: the seed is dead (and replaying it kills the grant).
    assert_grant_error(refresh(server.url, seed["refresh_token"]))


def test_pipeline_reads_through_an_oauth2_connection(serve: Serve, tmp_path: Path) -> None:
    from interlink.config import parse_config
    from interlink.connectors import Catalog
    from interlink.store import Store
    from interlink.sync import run_pipeline

    # 20 s is inside interlink's 30 s renewal margin: every request refreshes first, so
    # the run rotates the refresh token once per page, one after another.
    server, provider = serve(access_token_lifetime=20)
    seed = connect(server.url, login_hint="acct_b")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'interlink.db'}",
        "PROVIDER_URL": server.url,
        "PROVIDER_CLIENT_SECRET": CLIENT.client_secret,
        "PROVIDER_REFRESH_TOKEN": seed["refresh_token"],
    }
    config = parse_config(PIPELINE_YAML, file="interlink.yaml", env=env)
    store = Store.open(config.database)

    async def run() -> Any:
        async with Catalog(config) as catalog:
            return await run_pipeline(config, "provider_customers", store=store, catalog=catalog)

    result = asyncio.run(run())
    assert result.ok, result.errors
    assert result.counts["read"] == 12 and result.counts["created"] == 12
    with store.engine.connect() as conn:
        count = conn.exec_driver_sql("SELECT COUNT(*) FROM provider_customers").scalar()
    assert count == 12
    assert provider.stats.refreshes >= 3
    assert provider.stats.refresh_reuses == 0 and provider.stats.families_revoked == 0
