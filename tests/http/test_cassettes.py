"""Record a connection's exchanges into a cassette and replay them offline (interlink.http).

Against real sandbox servers: bearer, API-key (header and query), basic and OAuth2 client
credentials. Every secret those use is looked for in the cassette file, in every form.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from interlink.config import ConnectionConfig
from interlink.errors import ConfigError
from interlink.http import (
    ApiClient,
    Cassette,
    CassetteMissError,
    recording,
    replaying,
)
from interlink.sandbox import SandboxServer, create_commerce_app, create_shop_app

TOKEN = "shop-bearer-token-5f1e2d"
API_KEY = "shop-api-key-93ab71c0"
CLIENT_SECRET = "commerce-secret-77e1a9"


def connection(url: str, auth: dict, **more) -> ConnectionConfig:
    return ConnectionConfig.model_validate({"base_url": url, "auth": auth, **more})


def assert_no_secret(path: Path, *secrets: str) -> None:
    text = path.read_text()
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            assert form not in text, f"{form!r} is in {path}"


@pytest.fixture(scope="module")
def shop():
    app = create_shop_app(records=30, token=TOKEN, api_key=API_KEY)
    with SandboxServer(app) as server:
        yield server


async def read_echo_and_pages(client: ApiClient) -> list:
    answers = [await client.get_json("/echo", params={"q": "x"})]
    for offset in (0, 10):
        answers.append(await client.get_json("/customers", params={"offset": offset, "limit": 10}))
    answers.append(await client.get_json("/products/3"))
    return answers


async def test_record_then_replay_offline_with_no_secret_in_the_file(shop, tmp_path):
    config = connection(
        shop.url,
        {"type": "bearer", "token": TOKEN},
        headers={"X-API-Key": API_KEY},
    )
    with recording(tmp_path / "cassettes" / "shop") as cassette:
        async with ApiClient.from_config("shop", config) as client:
            live = await read_echo_and_pages(client)
    path = tmp_path / "cassettes" / "shop.json"
    assert cassette.path == path and len(cassette) == 4
    # The echo answer held the request's headers: the token and the key were in a body.
    assert live[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert_no_secret(path, TOKEN, API_KEY)
    stored = json.loads(path.read_text())
    echo = next(e for e in stored["exchanges"] if e["request"]["url"].startswith("/echo"))
    assert echo["response"]["json"]["headers"]["authorization"] == "***"
    assert "authorization" not in echo["request"].get("headers", {})
    assert "x-api-key" not in echo["request"].get("headers", {})

    # Offline: a client aimed at a closed port answers the same from the cassette.
    other = connection("http://127.0.0.1:9", {"type": "bearer", "token": "any-other-token"})
    with replaying(path):
        async with ApiClient.from_config("shop", other) as client:
            replayed = await read_echo_and_pages(client)
    assert replayed[1:] == live[1:]
    assert replayed[0]["headers"]["authorization"] == "***"


async def test_a_request_never_recorded_fails_naming_it_and_the_cassette(shop, tmp_path):
    config = connection(
        shop.url, {"type": "bearer", "token": TOKEN}, headers={"X-API-Key": API_KEY}
    )
    with recording(tmp_path / "c") as cassette:
        async with ApiClient.from_config("shop", config) as client:
            await client.get("/products/3")
    with replaying(cassette.path):
        async with ApiClient.from_config("shop", config) as client:
            with pytest.raises(CassetteMissError) as missed:
                await client.get("/products/4", params={"api_key": "leaky-key-123456"})
    message = str(missed.value)
    assert f"GET {shop.url}/products/4?api_key=***" in message
    assert str(cassette.path) in message
    assert "recorded at that path" not in message
    assert "leaky-key-123456" not in message
    assert missed.value.cassette == cassette.path


async def test_query_api_key_and_basic_auth_never_reach_the_file(tmp_path):
    # This shop wants only the key, so its echo answers 200 and shows it in its body (the
    # query as a dict and as pairs: masked by name in one, by value in the other).
    with SandboxServer(create_shop_app(records=3, api_key=API_KEY)) as shop:
        query_key = connection(
            shop.url, {"type": "api_key", "key": API_KEY, "name": "api_key", "in": "query"}
        )
        basic = connection(
            shop.url, {"type": "basic", "username": "ada", "password": "basic-pass-0042"}
        )
        with recording(tmp_path / "keys") as cassette:
            async with ApiClient.from_config("keyed", query_key) as client:
                echoed = await client.get_json("/echo")
            async with ApiClient.from_config("basic", basic) as client:
                await client.get("/echo", raise_for_status=False)
    assert [API_KEY] in [pair[1:] for pair in echoed["query_items"]]
    assert_no_secret(cassette.path, API_KEY, "basic-pass-0042", "YWRhOmJhc2ljLXBhc3MtMDA0Mg==")
    exchanges = json.loads(cassette.path.read_text())["exchanges"]
    # The key added at send time is not in the URL; the echo's body has it masked.
    assert [(e["request"]["url"], e["response"]["status"]) for e in exchanges] == [
        ("/echo", 401),
        ("/echo", 200),
    ]
    assert ["api_key", "***"] in exchanges[1]["response"]["json"]["query_items"]


async def test_oauth2_tokens_and_client_secret_are_masked(tmp_path):
    app = create_commerce_app(records=3, client_secret=CLIENT_SECRET)
    with SandboxServer(app) as server:
        config = connection(
            server.url,
            {
                "type": "oauth2_client_credentials",
                "token_url": "/oauth2-token",
                "client_id": "commerce-client",
                "client_secret": CLIENT_SECRET,
                "auth_method": "client_secret_post",
            },
        )
        with recording(tmp_path / "commerce") as cassette:
            async with ApiClient.from_config("commerce", config) as client:
                live = await client.get_json("/api/customers")
                token = client.auth._token.access_token  # type: ignore[union-attr]
    assert token and len(live["data"]) == 3
    assert_no_secret(cassette.path, CLIENT_SECRET, token)
    stored = json.loads(cassette.path.read_text())["exchanges"]
    grant = next(e for e in stored if e["request"]["url"] == "/oauth2-token")
    assert grant["response"]["json"]["access_token"] == "***"
    assert "client_secret=***" in grant["request"]["body"]["text"]
    # Replayed offline with a different client secret: the masked parts match anything.
    other = connection(
        "http://127.0.0.1:9",
        {
            "type": "oauth2_client_credentials",
            "token_url": "/oauth2-token",
            "client_id": "commerce-client",
            "client_secret": "another-secret-1234",
            "auth_method": "client_secret_post",
        },
    )
    with replaying(cassette.path):
        async with ApiClient.from_config("commerce", other) as client:
            assert await client.get_json("/api/customers") == live


async def test_recording_twice_gives_the_same_file(shop, tmp_path):
    config = connection(
        shop.url, {"type": "bearer", "token": TOKEN}, headers={"X-API-Key": API_KEY}
    )

    async def record(name: str) -> str:
        with recording(tmp_path / name) as cassette:
            async with ApiClient.from_config("shop", config) as client:
                # Out of order, and concurrent: the file is sorted all the same.
                await asyncio.gather(
                    client.get("/products/2"),
                    client.get("/customers", params={"offset": 10, "limit": 5}),
                    client.get("/products/1"),
                    client.get("/customers", params={"offset": 0, "limit": 5}),
                )
        return cassette.path.read_text()

    first = await record("one")
    assert first == await record("two")
    exchanges = json.loads(first)["exchanges"]
    assert [e["request"]["url"] for e in exchanges] == [
        "/customers?offset=0&limit=5",
        "/customers?offset=10&limit=5",
        "/products/1",
        "/products/2",
    ]


async def test_answers_to_the_same_request_keep_their_order(shop, tmp_path):
    config = connection(
        shop.url, {"type": "bearer", "token": TOKEN}, headers={"X-API-Key": API_KEY}
    )
    with recording(tmp_path / "writes") as cassette:
        async with ApiClient.from_config("shop", config) as client:
            await client.get("/products/1")
            first = await client.post("/customers", json={"email": "a@example.com"})
            second = await client.post("/customers", json={"email": "b@example.com"})
            polled = [await client.get_json("/customers/1") for _ in range(2)]
    created = [first.json()["id"], second.json()["id"]]
    exchanges = json.loads(cassette.path.read_text())["exchanges"]
    assert [(e["request"]["method"], e["request"]["url"]) for e in exchanges] == [
        ("GET", "/customers/1"),
        ("GET", "/customers/1"),
        ("GET", "/products/1"),
        ("POST", "/customers"),
        ("POST", "/customers"),
    ]
    with replaying(cassette.path):
        async with ApiClient.from_config("shop", config) as client:
            # Matched by body: b first still gets b's answer.
            b = await client.request_json("POST", "/customers", json={"email": "b@example.com"})
            a = await client.request_json("POST", "/customers", json={"email": "a@example.com"})
            assert [await client.get_json("/customers/1") for _ in range(3)] == [
                *polled,
                polled[-1],  # used up: the last answer repeats
            ]
            with pytest.raises(CassetteMissError):
                await client.post("/customers", json={"email": "c@example.com"})
    assert [a["id"], b["id"]] == created
    assert (a["email"], b["email"]) == ("a@example.com", "b@example.com")


async def test_the_environment_variable_replays(shop, tmp_path, monkeypatch):
    config = connection(
        shop.url, {"type": "bearer", "token": TOKEN}, headers={"X-API-Key": API_KEY}
    )
    with recording(tmp_path / "env") as cassette:
        async with ApiClient.from_config("shop", config) as client:
            live = await client.get_json("/products/5")
    monkeypatch.setenv("INTERLINK_REPLAY", str(tmp_path / "env"))
    offline = config.model_copy(update={"base_url": "http://127.0.0.1:9"})
    async with ApiClient.from_config("shop", offline) as client:
        assert await client.get_json("/products/5") == live
    assert len(cassette) == 1


def test_a_missing_or_foreign_cassette_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no cassette at .*nothing\.json; record one"):
        Cassette.load(tmp_path / "nothing")
    (tmp_path / "other.json").write_text('{"version": 3}')
    with pytest.raises(ConfigError, match="not a cassette"):
        Cassette.load(tmp_path / "other")
