"""Hostile review of the testing kit (issue 16, section 2): each test here failed on the
kit as it landed (commit 2cf0692) and names the defect it guards.

Secrets are looked for in recorded files in every form; replays run offline against a
closed port, through the same `ApiClient` stack as a live read.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from interlink.config import ConnectionConfig, InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import ApiError, ConfigError
from interlink.http import ApiClient, Cassette, recording, replaying
from interlink.testing import MockApi, Project

OFFLINE = "http://127.0.0.1:9"
TOKEN = "bearer-review-5f1e2d9a"


def bearer(url: str) -> ConnectionConfig:
    return ConnectionConfig.model_validate(
        {"base_url": url, "auth": {"type": "bearer", "token": TOKEN}}
    )


def assert_absent(path: Path, *secrets: str) -> None:
    text = path.read_text()
    for secret in secrets:
        for form in {secret, quote(secret, safe="")}:
            assert form not in text, f"{form!r} is in {path}:\n{text}"


# -- secrets the kit let into a cassette ---------------------------------------------------


async def test_credential_fields_in_any_naming_style_are_masked(tmp_path):
    """Defect: only snake_case `access_token`-like names were masked; `accessToken`,
    `token`, `clientSecret`, `sessionToken`, `apiToken` and `pass` went into the file."""
    body = {
        "id": 1,
        "session": {
            "accessToken": "camel-access-111111",
            "token": "plain-token-222222",
            "clientSecret": "camel-secret-333333",
            "sessionToken": "session-tok-444444",
        },
        "token_type": "Bearer",
    }
    mock = MockApi()
    mock.set_response("GET", "/me", json=body)
    mock.set_response("POST", "/login", json={"ok": True})
    with mock:
        with recording(tmp_path / "fields") as cassette:
            async with ApiClient.from_config("api", bearer(mock.url)) as client:
                assert await client.get_json("/me") == body
                await client.post(
                    "/login",
                    json={
                        "user": "ada",
                        "credentials": {"pass": "pw-review-101010"},
                        "apiToken": "api-token-121212",
                    },
                )
    assert_absent(
        cassette.path,
        "camel-access-111111",
        "plain-token-222222",
        "camel-secret-333333",
        "session-tok-444444",
        "pw-review-101010",
        "api-token-121212",
    )
    stored = json.loads(cassette.path.read_text())["exchanges"]
    me = next(e for e in stored if e["request"]["url"] == "/me")["response"]["json"]
    assert me["token_type"] == "Bearer" and me["id"] == 1  # not a credential: kept
    # The masked request body still matches on replay, whatever the password is then.
    with replaying(cassette.path):
        async with ApiClient.from_config("api", bearer(OFFLINE)) as client:
            await client.post(
                "/login",
                json={
                    "user": "ada",
                    "credentials": {"pass": "other-pw-9999"},
                    "apiToken": "other-token-8888",
                },
            )


async def test_a_form_encoded_token_answer_sent_as_text_is_masked(tmp_path):
    """Defect: a token endpoint answering `access_token=...&scope=...` as text/plain (as
    GitHub's does by default) was stored verbatim."""
    mock = MockApi()
    mock.set_response(
        "POST",
        "/login/oauth/access_token",
        content="access_token=gho_review555555&scope=repo&token_type=bearer",
        headers={"content-type": "text/plain; charset=utf-8"},
    )
    with mock:
        with recording(tmp_path / "form") as cassette:
            async with ApiClient.from_config("api", bearer(mock.url)) as client:
                await client.post(
                    "/login/oauth/access_token",
                    content=b"code=c0de-123456",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
    assert_absent(cassette.path, "gho_review555555", "c0de-123456")
    [exchange] = json.loads(cassette.path.read_text())["exchanges"]
    # Masked by name as in a URL (so `token_type` too: the redactor's rule for queries).
    assert exchange["response"]["text"].startswith("access_token=***&scope=repo&")


async def test_secrets_in_links_and_redirects_are_masked_and_still_replay(tmp_path):
    """Defect: query credentials in `Location` and `Link` headers, and in links inside
    JSON bodies (a next URL on another origin), were stored verbatim."""
    mock = MockApi()
    mock.set_response(
        "GET",
        "/download",
        status=302,
        headers={
            "Location": "/files/f?X-Amz-Security-Token=aws-sess-666666&X-Amz-Signature=sg777777"
        },
    )
    mock.set_response("GET", "/files/f", json={"file": True})
    mock.set_response(
        "GET",
        "/linked",
        json=[{"id": 1}],
        headers={"Link": '</linked?access_token=link-tok-888888&page=2>; rel="next"'},
    )
    mock.set_response(
        "GET",
        "/page",
        json={"data": [], "next": "https://other.example/p?access_token=body-tok-999999&page=2"},
    )
    with mock:
        with recording(tmp_path / "links") as cassette:
            async with ApiClient.from_config("api", bearer(mock.url)) as client:
                redirect = await client.get("/download", raise_for_status=False)
                followed = redirect.headers["location"]
                await client.get(followed)
                linked = await client.get("/linked")
                await client.get_json("/page")
    assert_absent(
        cassette.path, "aws-sess-666666", "sg777777", "link-tok-888888", "body-tok-999999"
    )
    page = next(
        e
        for e in json.loads(cassette.path.read_text())["exchanges"]
        if e["request"]["url"] == "/page"
    )
    assert page["response"]["json"]["next"] == "https://other.example/p?access_token=***&page=2"
    # Offline, the masked link is followed and answered from the file.
    with replaying(cassette.path):
        async with ApiClient.from_config("api", bearer(OFFLINE)) as client:
            redirect = await client.get("/download", raise_for_status=False)
            assert "X-Amz-Security-Token=***" in redirect.headers["location"]
            assert (await client.get_json(redirect.headers["location"])) == {"file": True}
            assert (await client.get("/linked")).headers["link"] == linked.headers["link"].replace(
                "link-tok-888888", "***"
            )


# -- replay correctness ---------------------------------------------------------------------


async def test_a_masked_value_does_not_swallow_the_rest_of_the_url(tmp_path):
    """Defect: `***` matched any text, so `/items?session=***` answered
    `/items?session=...&page=2` with page 1, and page 1 then missed."""
    mock = MockApi()
    mock.set_response("GET", "/items", json={"page": 1})
    mock.set_response("GET", "/items?page=2", json={"page": 2})
    config = ConnectionConfig.model_validate({"base_url": OFFLINE})
    with mock:
        live = ConnectionConfig.model_validate({"base_url": mock.url})
        with recording(tmp_path / "session") as cassette:
            async with ApiClient.from_config("api", live) as client:
                await client.get("/items", params={"session": "s-1"})
                await client.get("/items", params={"session": "s-1", "page": 2})
    with replaying(cassette.path):
        async with ApiClient.from_config("api", config) as client:
            # Page 2 first (two pages in flight finish in any order).
            assert await client.get_json("/items", params={"session": "s-1", "page": 2}) == {
                "page": 2
            }
            assert await client.get_json("/items", params={"session": "s-1"}) == {"page": 1}


@pytest.mark.parametrize(
    "exchanges",
    [
        [{"connection": "a"}],
        [{"request": {"method": "GET", "url": "/x"}, "response": {}}],
        ["not an exchange"],
        [{"request": {"method": "GET"}, "response": {"status": 200}}],
    ],
)
def test_a_broken_cassette_is_a_config_error_naming_the_exchange(tmp_path, exchanges):
    """Defect: a hand-edited or truncated exchange raised KeyError/TypeError mid-replay."""
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"interlink_cassette": 1, "exchanges": exchanges}))
    with pytest.raises(ConfigError) as raised:
        Cassette.load(path)
    assert str(path) in str(raised.value) and "exchange 1" in str(raised.value)


async def test_recording_never_overwrites_a_file_that_is_not_a_cassette(tmp_path):
    """Defect: `--record data` replaced a user's `data.json` without a word."""
    data = tmp_path / "data.json"
    data.write_text('{"customers": [1, 2, 3]}')
    with pytest.raises(ConfigError) as raised:
        with recording(tmp_path / "data"):
            pass
    assert "data.json" in str(raised.value) and "not a cassette" in str(raised.value)
    assert data.read_text() == '{"customers": [1, 2, 3]}'
    # An existing cassette is replaced (the documented behaviour).
    old = tmp_path / "old.json"
    Cassette(
        old,
        [
            {
                "connection": "a",
                "request": {"method": "GET", "url": "/x"},
                "response": {"status": 200},
            }
        ],
    ).save()
    with recording(tmp_path / "old") as cassette:
        pass
    assert len(Cassette.load(old)) == 0 and cassette.path == old


def test_environment_cassettes_do_not_leak_between_commands_of_one_process(tmp_path):
    """Defect: INTERLINK_RECORD/INTERLINK_REPLAY cassettes were cached per process by the
    name as written, so a second in-process command (a second test's `Project.run`)
    recorded the first's exchanges into its own file, and replayed a stale file."""
    mock = MockApi()
    mock.set_response("GET", "/products/1", json={"id": 1, "name": "Lamp"})
    mock.set_response("GET", "/products/2", json={"id": 2, "name": "Desk"})
    with mock:
        files = []
        for number in (1, 2):
            project = Project(tmp_path / f"p{number}")
            project.write_config(
                {
                    "connections": {"shop": {"base_url": mock.url}},
                    "resources": {"shop": {"product": {"path": f"/products/{number}"}}},
                }
            )
            project.run(
                "read", "shop.product", "-o", "jsonl", env={"INTERLINK_RECORD": "cassettes/shop"}
            )
            files.append(project.path / "cassettes/shop.json")
    urls = [[e["request"]["url"] for e in json.loads(f.read_text())["exchanges"]] for f in files]
    assert urls == [["/products/1"], ["/products/2"]]
    # A cassette recorded again between two commands is read again.
    project = Project(tmp_path / "p2")
    first = project.run(
        "read", "shop.product", "-o", "jsonl", env={"INTERLINK_REPLAY": "cassettes/shop"}
    )
    assert json.loads(first.stdout)["name"] == "Desk"
    stored = json.loads(files[1].read_text())
    stored["exchanges"][0]["response"]["json"]["name"] = "Chair"
    files[1].write_text(json.dumps(stored))
    again = project.run(
        "read", "shop.product", "-o", "jsonl", env={"INTERLINK_REPLAY": "cassettes/shop"}
    )
    assert json.loads(again.stdout)["name"] == "Chair"


# -- single-object endpoints ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        # JSON-RPC (the Odoo guide's API): records under `result`, an `id` of the call.
        {"jsonrpc": "2.0", "id": 7, "result": [{"id": 1}, {"id": 2}, {"id": 3}]},
        # A JSON-RPC error is not a record either.
        {"jsonrpc": "2.0", "id": 7, "error": {"code": -32601, "message": "no such method"}},
        # A list envelope with an id of its own and paging.
        {"id": "list_1", "object": "list", "results": [{"id": 5}, {"id": 6}], "has_more": True},
        {"id": "req-9", "items": [{"id": 1}], "next_cursor": "abc"},
    ],
)
async def test_envelopes_with_an_id_of_their_own_are_not_one_record(body):
    """Defect: any object holding the primary key read as one record, so a list envelope
    (or a JSON-RPC error) with an `id` was a one-row table reported as success."""
    config = InterlinkConfig.model_validate(
        {
            "connections": {"api": {"base_url": "https://api.example.com"}},
            "resources": {"api": {"one": {"path": "/one"}}},
        }
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    async with Catalog(config, transport=transport) as catalog:
        with pytest.raises(ApiError) as raised:
            [r async for r in catalog.resource("api.one").records()]
    if "error" in body:  # the error's own message, rather than "no records"
        assert "the API reported an error: no such method" in str(raised.value)
    else:
        assert "records" in str(raised.value)


# -- MockApi --------------------------------------------------------------------------------


async def test_repeated_request_headers_are_seen_alike_in_both_modes():
    """Defect: over real HTTP a repeated header kept only its last value; in memory they
    were joined (`a, b`), so a test passed in one mode and failed in the other."""
    mock = MockApi()
    mock.set_response("GET", "/h", json={})
    headers = [("X-Tag", "a"), ("X-Tag", "b")]
    async with httpx.AsyncClient(transport=mock.transport()) as client:
        await client.get("http://mock.test/h", headers=headers)
    with mock:
        async with httpx.AsyncClient() as client:
            await client.get(f"{mock.url}/h", headers=headers)
    assert [r.headers["x-tag"] for r in mock.requests] == ["a, b", "a, b"]


async def test_a_replayed_refresh_never_reaches_the_accounts_vault(tmp_path):
    """Replaying a connected account's run: an expired token is refreshed from the
    cassette, whose answer is a masked `***` token; the account's real token source must
    not be written (it would break the live connection)."""
    import time as _time

    from interlink.config import InterlinkConfig
    from interlink.http import Cassette, client_from_config, replaying
    from interlink.types import OAuthToken

    class Vault:
        def __init__(self) -> None:
            self.token = OAuthToken(
                access_token="old", refresh_token="r1", expires_at=_time.time() - 10
            )
            self.saved: list[OAuthToken] = []

        async def load(self) -> OAuthToken | None:
            return self.token

        async def save(self, token: OAuthToken) -> None:
            self.saved.append(token)

    config = InterlinkConfig.model_validate(
        {
            "connections": {
                "crm": {
                    "base_url": "https://crm.example.com/api",
                    "auth": {
                        "type": "oauth2",
                        "token_url": "https://crm.example.com/oauth/token",
                        "client_id": "cid",
                        "client_secret": "csecret",
                    },
                }
            }
        }
    ).connections["crm"]
    cassette = Cassette.new(tmp_path / "crm")
    vault = Vault()
    with replaying(cassette):
        client = client_from_config("crm", config, token_source=vault)
    source = client.auth.source  # type: ignore[union-attr]
    assert source is not vault
    assert (await source.load()) == vault.token  # read from the real one
    fresh = OAuthToken(access_token="***", refresh_token="***", expires_at=_time.time() + 60)
    await source.save(fresh)
    assert vault.saved == [] and (await source.load()) == fresh
    await client.aclose()
    # Outside a replay the real source is used as it is.
    live = client_from_config("crm", config, token_source=vault)
    assert live.auth.source is vault  # type: ignore[union-attr]
    await live.aclose()
