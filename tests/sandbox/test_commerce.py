"""The commerce sandbox: OAuth2 client credentials and the JSON:API customers resource."""

import base64
import math
import time
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

from interlink.sandbox import (
    FaultConfig,
    SandboxServer,
    create_commerce_app,
    make_customer,
    make_customers,
)

from .conftest import AppClient

JSONAPI = "application/vnd.api+json"
CLIENT = ("commerce-client", "commerce-secret")


async def _token(client: httpx.AsyncClient, auth: tuple[str, str] = CLIENT) -> dict[str, str]:
    response = await client.post(
        "/oauth2-token", data={"grant_type": "client_credentials"}, auth=auth
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _authed(app_client: AppClient, **options: Any) -> httpx.AsyncClient:
    client = app_client(create_commerce_app(**options))
    client.headers.update(await _token(client))
    client.headers["Content-Type"] = JSONAPI
    return client


def _doc(attributes: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"data": {"type": "customers", "attributes": attributes, **data}}


# -- OAuth2 ------------------------------------------------------------------------------


async def test_client_secret_basic(app_client: AppClient) -> None:
    client = app_client(create_commerce_app(token_lifetime=600))
    response = await client.post(
        "/oauth2-token", data={"grant_type": "client_credentials"}, auth=CLIENT
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
    assert response.headers["cache-control"] == "no-store"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await client.get("/api/customers", headers=headers)).status_code == 200


async def test_client_secret_post(app_client: AppClient) -> None:
    client = app_client(create_commerce_app())
    response = await client.post(
        "/oauth2-token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT[0],
            "client_secret": CLIENT[1],
        },
    )
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"


async def test_basic_credentials_are_form_encoded(app_client: AppClient) -> None:
    client_id, secret = "id:with colon", "s3cr+t/ü"
    client = app_client(create_commerce_app(client_id=client_id, client_secret=secret))
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    response = await client.post(
        "/oauth2-token",
        content=b"grant_type=client_credentials",
        headers={
            "Authorization": f"Basic {base64.b64encode(raw).decode()}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, ("commerce-client", "wrong"), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials"},
            ("someone", "commerce-secret"),
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
        ({"grant_type": "password"}, CLIENT, 400, "unsupported_grant_type"),
        ({}, CLIENT, 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "client_secret": "commerce-secret"},
            CLIENT,
            400,
            "invalid_request",
        ),
    ],
)
async def test_token_errors_follow_rfc_6749(
    app_client: AppClient,
    data: dict[str, str],
    auth: tuple[str, str] | None,
    status: int,
    error: str,
) -> None:
    client = app_client(create_commerce_app())
    if auth is None:
        response = await client.post("/oauth2-token", data=data)
    else:
        response = await client.post("/oauth2-token", data=data, auth=auth)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["error_description"]
    if status == 401:
        assert response.headers["www-authenticate"] == 'Basic realm="commerce"'
    assert (await client.get("/_stats")).json()["tokens_issued"] == 0


async def test_token_request_must_be_a_form(app_client: AppClient) -> None:
    client = app_client(create_commerce_app())
    as_json = await client.post("/oauth2-token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    repeated = await client.post(
        "/oauth2-token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=CLIENT,
    )
    assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"
    bad_basic = await client.post(
        "/oauth2-token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic %%%"},
    )
    assert bad_basic.status_code == 401


async def test_api_needs_a_valid_token(app_client: AppClient) -> None:
    client = app_client(create_commerce_app())
    missing = await client.get("/api/customers")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="commerce"'
    assert missing.headers["content-type"] == JSONAPI
    assert missing.json()["errors"][0]["status"] == "401"
    bogus = await client.get("/api/customers", headers={"Authorization": "Bearer nope"})
    assert bogus.status_code == 401
    assert 'error="invalid_token"' in bogus.headers["www-authenticate"]
    stats = (await client.get("/_stats")).json()
    assert stats["unauthorized"] == 2


async def test_tokens_expire_after_their_lifetime(app_client: AppClient) -> None:
    app = create_commerce_app(token_lifetime=2)
    now = [1000.0]
    app.state.issuer.clock = lambda: now[0]
    client = app_client(app)
    headers = await _token(client)
    now[0] += 1.9
    assert (await client.get("/api/customers", headers=headers)).status_code == 200
    now[0] += 0.1
    expired = await client.get("/api/customers", headers=headers)
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Bearer realm="commerce", error="invalid_token"'
    fresh = await _token(client)
    assert (await client.get("/api/customers", headers=fresh)).status_code == 200
    assert (await client.get("/_stats")).json()["tokens_issued"] == 2


def test_a_short_lived_token_expires_in_real_time() -> None:
    with SandboxServer(create_commerce_app(token_lifetime=1)) as server:
        with httpx.Client(base_url=server.url) as client:
            token = client.post(
                "/oauth2-token", data={"grant_type": "client_credentials"}, auth=CLIENT
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/customers", headers=headers).status_code == 200
            time.sleep(1.0)
            assert client.get("/api/customers", headers=headers).status_code == 401


# -- JSON:API reads ----------------------------------------------------------------------


async def _read_all(client: httpx.AsyncClient, params: dict[str, Any]) -> tuple[list[int], int]:
    ids: list[int] = []
    response = await client.get("/api/customers", params={**params, "page[size]": 100})
    requests = 0
    while True:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == JSONAPI
        body = response.json()
        requests += 1
        ids += [int(resource["id"]) for resource in body["data"]]
        if "next" not in body["links"]:
            return ids, requests
        response = await client.get(body["links"]["next"])


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 1007])
async def test_list_reads_every_record_once(app_client: AppClient, size: int) -> None:
    client = await _authed(app_client, records=size)
    ids, requests = await _read_all(client, {})
    assert ids == list(range(1, size + 1))
    assert requests == max(1, math.ceil(size / 100))


async def test_resource_shape_and_links(app_client: AppClient) -> None:
    client = await _authed(app_client, records=250, seed=5)
    body = (await client.get("/api/customers", params={"page[number]": 2})).json()
    assert body["meta"] == {"total": 250}
    assert set(body["links"]) == {"self", "first", "prev", "next", "last"}
    assert body["links"]["next"] == ("http://sandbox.test/api/customers?page%5Bnumber%5D=3")
    resource = body["data"][0]
    assert (resource["type"], resource["id"]) == ("customers", "101")
    assert resource["relationships"]["owner"]["data"]["type"] == "users"
    assert resource["links"]["self"] == "http://sandbox.test/api/customers/101"
    assert set(resource["attributes"]) == {
        "email",
        "first_name",
        "last_name",
        "company",
        "phone",
        "street",
        "city",
        "country",
        "external_id",
        "created_at",
        "updated_at",
    }
    one = await client.get("/api/customers/101")
    assert one.json()["data"] == resource
    last = (await client.get("/api/customers", params={"page[number]": 3})).json()
    assert "next" not in last["links"] and len(last["data"]) == 50


async def test_bad_paging_is_a_jsonapi_400(app_client: AppClient) -> None:
    client = await _authed(app_client, records=5)
    response = await client.get("/api/customers", params={"page[size]": 0})
    assert response.status_code == 400
    assert response.json()["errors"][0]["status"] == "400"
    capped = await client.get("/api/customers", params={"page[size]": 5000})
    assert capped.status_code == 200


async def test_unknown_ids_and_routes_are_404(app_client: AppClient) -> None:
    client = await _authed(app_client, records=5)
    for path in ("/api/customers/6", "/api/customers/abc", "/api/orders"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["errors"][0]["status"] == "404"
    assert (await client.patch("/api/customers/6", json=_doc({}, id="6"))).status_code == 404
    assert (await client.delete("/api/customers/6")).status_code == 404


async def test_overlap_shares_shop_emails(app_client: AppClient) -> None:
    client = await _authed(app_client, records=10, overlap=4, seed=3)
    body = (await client.get("/api/customers")).json()
    emails = [resource["attributes"]["email"] for resource in body["data"]]
    shop = {customer["email"] for customer in make_customers(3, 1000)}
    assert emails[:4] == [make_customer(3, n)["email"] for n in range(1, 5)]
    assert not shop & set(emails[4:])
    assert len(set(emails)) == 10
    first = body["data"][0]["attributes"]
    assert first["first_name"] == make_customer(3, 1)["first_name"]


async def test_filter_by_email_and_updated_since(app_client: AppClient) -> None:
    client = await _authed(app_client, records=50, overlap=10, seed=3)
    email = make_customer(3, 7)["email"]
    body = (await client.get("/api/customers", params={"filter[email]": email.upper()})).json()
    assert [r["id"] for r in body["data"]] == ["7"] and body["meta"]["total"] == 1
    other = make_customer(3, 20)["email"]
    assert (await client.get("/api/customers", params={"filter[email]": other})).json()[
        "data"
    ] == []
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    params = {"filter[updated_since]": since}
    assert (await client.get("/api/customers", params=params)).json()["meta"]["total"] == 0
    await client.post("/_touch", json={"resource": "customers", "ids": [7, 30]})
    await client.patch("/api/customers/41", json=_doc({"phone": "1"}, id="41"))
    ids, _ = await _read_all(client, params)
    assert ids == [7, 30, 41]
    both = await client.get("/api/customers", params={**params, "filter[email]": email})
    assert [r["id"] for r in both.json()["data"]] == ["7"]


# -- JSON:API writes ---------------------------------------------------------------------


async def test_create_read_update_delete(app_client: AppClient) -> None:
    client = await _authed(app_client, records=3)
    created = await client.post(
        "/api/customers",
        json=_doc(
            {"email": "ada@example.com", "first_name": "Ada", "external_id": "shop-1"},
            relationships={"owner": {"data": {"type": "users", "id": "2"}}},
        ),
        headers={"Content-Type": JSONAPI},
    )
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == JSONAPI
    resource = created.json()["data"]
    assert resource["id"] == "4"
    assert created.headers["location"] == "http://sandbox.test/api/customers/4"
    assert resource["attributes"]["first_name"] == "Ada"
    assert resource["attributes"]["last_name"] == ""
    assert resource["relationships"]["owner"]["data"]["id"] == "2"
    assert (await client.get("/api/customers/4")).json()["data"] == resource

    patched = await client.patch(
        "/api/customers/4", json=_doc({"last_name": "Lovelace", "external_id": None}, id="4")
    )
    assert patched.status_code == 200
    attributes = patched.json()["data"]["attributes"]
    assert attributes["last_name"] == "Lovelace" and attributes["first_name"] == "Ada"
    assert attributes["external_id"] is None
    assert attributes["updated_at"] >= resource["attributes"]["updated_at"]
    assert attributes["created_at"] == resource["attributes"]["created_at"]

    deleted = await client.delete("/api/customers/4")
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.get("/api/customers/4")).status_code == 404
    assert (await client.delete("/api/customers/2")).status_code == 204
    assert [r["id"] for r in (await client.get("/api/customers")).json()["data"]] == ["1", "3"]
    again = await client.post("/api/customers", json=_doc({"email": "ada@example.com"}))
    assert again.json()["data"]["id"] == "5"
    stats = (await client.get("/_stats")).json()
    assert (stats["creates"], stats["updates"], stats["deletes"]) == (2, 1, 2)


async def test_patch_of_a_generated_customer(app_client: AppClient) -> None:
    client = await _authed(app_client, records=5, overlap=5, seed=1)
    response = await client.patch("/api/customers/3", json=_doc({"company": "New"}, id="3"))
    attributes = response.json()["data"]["attributes"]
    original = make_customer(1, 3)
    assert attributes["company"] == "New"
    assert (attributes["email"], attributes["phone"]) == (original["email"], original["phone"])
    # Keeping one's own email is not a conflict.
    same = await client.patch(
        "/api/customers/3", json=_doc({"email": original["email"].upper()}, id="3")
    )
    assert same.status_code == 200


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSONAPI
    (error,) = response.json()["errors"]
    assert error["status"] == str(status) and error["title"] and error["detail"]
    return dict(error)


async def test_validation_errors(app_client: AppClient) -> None:
    client = await _authed(app_client, records=5, overlap=2, seed=1)
    missing = _error(await client.post("/api/customers", json=_doc({"first_name": "A"})), 422)
    assert missing["code"] == "required"
    assert missing["source"] == {"pointer": "/data/attributes/email"}

    taken = make_customer(1, 2)["email"]
    unique = _error(await client.post("/api/customers", json=_doc({"email": taken})), 422)
    assert unique["code"] == "unique" and unique["source"]["pointer"] == "/data/attributes/email"
    await client.post("/api/customers", json=_doc({"email": "new@example.com"}))
    dup = await client.post("/api/customers", json=_doc({"email": "NEW@example.com"}))
    assert _error(dup, 422)["code"] == "unique"
    moved = await client.patch("/api/customers/1", json=_doc({"email": taken}, id="1"))
    assert _error(moved, 422)["code"] == "unique"

    cases = [
        (_doc({"email": "x@example.com", "created_at": "2020"}), "read_only"),
        (_doc({"email": "x@example.com", "shoe": "44"}), "unknown_attribute"),
        (_doc({"email": "x@example.com", "phone": 5}), "invalid"),
        (_doc({"email": "not-an-email"}), "invalid"),
        (
            _doc(
                {"email": "x@example.com"},
                relationships={"owner": {"data": {"type": "users", "id": "99"}}},
            ),
            "invalid",
        ),
    ]
    for document, code in cases:
        assert _error(await client.post("/api/customers", json=document), 422)["code"] == code

    several = await client.post("/api/customers", json=_doc({"phone": 1, "city": 2}))
    assert several.status_code == 422 and len(several.json()["errors"]) == 3
    assert (await client.get("/_stats")).json()["creates"] == 1


async def test_malformed_and_conflicting_documents(app_client: AppClient) -> None:
    client = await _authed(app_client, records=5)
    assert _error(await client.post("/api/customers", content=b"{"), 400)["code"] == "malformed"
    no_data = _error(await client.post("/api/customers", json={"email": "a@b.c"}), 400)
    assert no_data["source"]["pointer"] == "/data"
    no_type = await client.post("/api/customers", json={"data": {"attributes": {}}})
    assert _error(no_type, 400)["source"]["pointer"] == "/data/type"
    bad_attributes = await client.post(
        "/api/customers", json={"data": {"type": "customers", "attributes": []}}
    )
    assert _error(bad_attributes, 400)["source"]["pointer"] == "/data/attributes"
    wrong_type = await client.post(
        "/api/customers", json={"data": {"type": "users", "attributes": {"email": "a@b.c"}}}
    )
    assert _error(wrong_type, 409)["source"]["pointer"] == "/data/type"
    client_id = await client.post("/api/customers", json=_doc({"email": "a@b.c"}, id="77"))
    assert _error(client_id, 403)["code"] == "client_generated_id"
    mismatch = await client.patch("/api/customers/2", json=_doc({}, id="3"))
    assert _error(mismatch, 409)["source"]["pointer"] == "/data/id"
    no_id = await client.patch("/api/customers/2", json=_doc({}))
    assert _error(no_id, 400)["source"]["pointer"] == "/data/id"
    wrong_media = await client.post(
        "/api/customers", content=b"email=a", headers={"Content-Type": "text/plain"}
    )
    assert _error(wrong_media, 415)["code"] == "unsupported_media_type"
    with_charset = await client.post(
        "/api/customers",
        json=_doc({"email": "a@b.c"}),
        headers={"Content-Type": f"{JSONAPI}; charset=utf-8"},
    )
    assert with_charset.status_code == 415
    plain_json = await client.post(
        "/api/customers",
        json=_doc({"email": "a@b.c"}),
        headers={"Content-Type": "application/json"},
    )
    assert plain_json.status_code == 201
    assert _error(await client.put("/api/customers"), 405)["code"] == "method_not_allowed"


async def test_idempotency_key(app_client: AppClient) -> None:
    client = await _authed(app_client, records=3)
    headers = {"Idempotency-Key": "k-1"}
    document = _doc({"email": "once@example.com"})
    first = await client.post("/api/customers", json=document, headers=headers)
    second = await client.post("/api/customers", json=document, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == JSONAPI
    other = await client.post(
        "/api/customers", json=_doc({"email": "twice@example.com"}), headers=headers
    )
    assert _error(other, 422)["code"] == "idempotency_key_reused"
    # A rejected create is replayed as well, and still creates nothing.
    bad = _doc({"first_name": "no email"})
    assert (
        await client.post("/api/customers", json=bad, headers={"Idempotency-Key": "k-2"})
    ).status_code == 422
    assert (
        await client.post("/api/customers", json=bad, headers={"Idempotency-Key": "k-2"})
    ).status_code == 422
    stats = (await client.get("/_stats")).json()
    assert (stats["creates"], stats["idempotent_replays"]) == (1, 2)
    assert (await client.get("/api/customers")).json()["meta"]["total"] == 4


async def test_reset_restores_data_but_keeps_tokens(app_client: AppClient) -> None:
    client = await _authed(app_client, records=3)
    await client.post("/api/customers", json=_doc({"email": "a@example.com"}))
    await client.delete("/api/customers/1")
    assert (await client.post("/_reset")).json() == {"reset": True}
    body = (await client.get("/api/customers")).json()
    assert [r["id"] for r in body["data"]] == ["1", "2", "3"]
    stats = (await client.get("/_stats")).json()
    assert (stats["creates"], stats["deletes"], stats["tokens_issued"]) == (0, 0, 0)


async def test_rate_limit_and_faults(app_client: AppClient) -> None:
    limited = app_client(create_commerce_app(rate_limit=(1, 60, 2)))
    headers = await _token(limited)
    assert (await limited.get("/api/customers", headers=headers)).status_code == 200
    response = await limited.get("/api/customers", headers=headers)
    assert response.status_code == 429 and "retry-after" in response.headers
    assert (await limited.get("/_stats")).json()["rate_limited"] == 1

    faulty = app_client(create_commerce_app(faults=FaultConfig(server_error_rate=1.0)))
    assert (await faulty.post("/oauth2-token", auth=CLIENT)).status_code == 500
    stats = (await faulty.get("/_stats")).json()
    assert stats["faults"]["server_error"] == 1


def test_commerce_over_a_real_socket() -> None:
    with SandboxServer(create_commerce_app(records=120)) as server:
        with httpx.Client(base_url=server.url) as client:
            token = client.post(
                "/oauth2-token", data={"grant_type": "client_credentials"}, auth=CLIENT
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            body = client.get("/api/customers").json()
            assert body["links"]["next"].startswith(f"{server.url}/api/customers?")
            assert len(client.get(body["links"]["next"]).json()["data"]) == 20
