import httpx

from .conftest import ServeShop, ShopClient


async def test_bearer_token_is_required(shop_client: ShopClient) -> None:
    client = shop_client(token="s3cret")
    missing = await client.get("/customers")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="sandbox"'
    assert missing.json()["error"]["code"] == "unauthorized"

    wrong = await client.get("/customers", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer realm="sandbox", error="invalid_token"'

    basic = await client.get("/customers", headers={"Authorization": "Basic czNjcmV0"})
    assert basic.status_code == 401

    ok = await client.get("/customers", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


async def test_api_key_in_header_or_query(shop_client: ShopClient) -> None:
    client = shop_client(api_key="k-123")
    missing = await client.get("/customers/1")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'ApiKey realm="sandbox"'
    assert (await client.get("/customers/1", headers={"X-API-Key": "bad"})).status_code == 401
    assert (await client.get("/customers/1", params={"api_key": "bad"})).status_code == 401
    assert (await client.get("/customers/1", headers={"X-API-Key": "k-123"})).status_code == 200
    assert (await client.get("/customers/1", params={"api_key": "k-123"})).status_code == 200


async def test_token_and_key_together_need_both(shop_client: ShopClient) -> None:
    client = shop_client(token="t", api_key="k")
    bearer = {"Authorization": "Bearer t"}
    assert (await client.get("/echo", headers=bearer)).status_code == 401
    assert (await client.get("/echo", headers={"X-API-Key": "k"})).status_code == 401
    response = await client.get("/echo", headers={**bearer, "X-API-Key": "k"})
    assert response.status_code == 200


async def test_admin_paths_need_no_auth_and_count_401s(shop_client: ShopClient) -> None:
    client = shop_client(token="t")
    await client.get("/customers")
    stats = await client.get("/_stats")
    assert stats.status_code == 200
    assert stats.json()["unauthorized"] == 1
    assert (await client.post("/_reset")).status_code == 200


def test_echo_shows_what_the_client_sent_over_a_socket(serve_shop: ServeShop) -> None:
    server = serve_shop(api_key="k")
    with httpx.Client(base_url=server.url) as client:
        echo = client.get("/echo", params={"api_key": "k", "q": "1"}).json()
    assert echo["query"] == {"api_key": "k", "q": "1"}
    assert echo["headers"]["host"] == server.url.removeprefix("http://")
