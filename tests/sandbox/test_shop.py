import httpx

from interlink.sandbox import make_customers

from .conftest import ServeShop, ShopClient


async def test_offset_pagination_returns_every_record_exactly_once(serve_shop: ServeShop) -> None:
    server = serve_shop(records=2345, seed=9)
    seen: list[int] = []
    async with httpx.AsyncClient(base_url=server.url) as client:
        offset = 0
        while True:
            response = await client.get("/customers", params={"offset": offset, "limit": 1000})
            assert response.status_code == 200
            page = response.json()
            assert (page["total"], page["offset"], page["limit"]) == (2345, offset, 1000)
            if not page["data"]:
                break
            seen += [customer["id"] for customer in page["data"]]
            offset += len(page["data"])
    assert seen == list(range(1, 2346))


async def test_pages_hold_the_seeded_records(shop_client: ShopClient) -> None:
    client = shop_client(records=300, seed=5)
    page = (await client.get("/customers", params={"offset": 250})).json()
    assert page["data"] == make_customers(5, 50, start=251)
    assert page["limit"] == 100


async def test_limit_is_capped_at_1000(shop_client: ShopClient) -> None:
    client = shop_client(records=1500)
    page = (await client.get("/customers", params={"limit": 5000})).json()
    assert page["limit"] == 1000 and len(page["data"]) == 1000


async def test_bad_paging_parameters_are_400(shop_client: ShopClient) -> None:
    client = shop_client()
    for params in ({"offset": -1}, {"limit": 0}, {"limit": "ten"}):
        response = await client.get("/customers", params=params)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_parameter"


async def test_get_customer_and_404(shop_client: ShopClient) -> None:
    client = shop_client(records=10, seed=3)
    assert (await client.get("/customers/4")).json() == make_customers(3, 1, start=4)[0]
    for path in ("/customers/11", "/customers/0", "/customers/abc", "/nowhere"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"


async def test_unsupported_method_is_405_json(shop_client: ShopClient) -> None:
    response = await shop_client().delete("/customers")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["allow"]


async def test_echo_reflects_the_request(shop_client: ShopClient) -> None:
    client = shop_client()
    response = await client.post(
        "/echo?a=1&a=2&b=x", headers={"X-Custom": "yes", "Authorization": "Bearer t"}, content="hi"
    )
    echo = response.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo"
    assert echo["query"]["b"] == "x"
    assert echo["query_items"] == [["a", "1"], ["a", "2"], ["b", "x"]]
    assert echo["headers"]["x-custom"] == "yes"
    assert echo["headers"]["authorization"] == "Bearer t"
    assert echo["body"] == "hi"


async def test_create_customer(shop_client: ShopClient) -> None:
    client = shop_client(records=10)
    response = await client.post(
        "/customers", json={"email": "ada@example.com", "first_name": "Ada", "tags": ["vip"]}
    )
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == 11 and created["first_name"] == "Ada"
    assert response.headers["location"] == "/customers/11"
    assert (await client.get("/customers/11")).json() == created
    assert (await client.get("/customers", params={"offset": 10})).json()["data"] == [created]
    assert (await client.get("/_stats")).json()["creates"] == 1


async def test_invalid_customer_is_422_with_details(shop_client: ShopClient) -> None:
    client = shop_client()
    response = await client.post("/customers", json={"first_name": 3, "tags": "vip"})
    assert response.status_code == 422
    fields = {detail["field"] for detail in response.json()["error"]["details"]}
    assert fields == {"email", "first_name", "tags"}
    response = await client.post("/customers", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert (await client.get("/_stats")).json()["creates"] == 0


async def test_idempotency_key_replays_without_creating_twice(shop_client: ShopClient) -> None:
    client = shop_client(records=10)
    body = {"email": "grace@example.com"}
    headers = {"Idempotency-Key": "key-1"}
    first = await client.post("/customers", json=body, headers=headers)
    second = await client.post("/customers", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other = await client.post("/customers", json=body, headers={"Idempotency-Key": "key-2"})
    assert other.json()["id"] == 12
    stats = (await client.get("/_stats")).json()
    assert (stats["creates"], stats["idempotent_replays"]) == (2, 1)
    assert (await client.get("/customers")).json()["total"] == 12


async def test_idempotency_key_reused_with_another_body_is_422(shop_client: ShopClient) -> None:
    client = shop_client()
    headers = {"Idempotency-Key": "k"}
    await client.post("/customers", json={"email": "a@example.com"}, headers=headers)
    response = await client.post("/customers", json={"email": "b@example.com"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"


async def test_stats_count_requests_by_path_and_reset_restores_the_start(
    shop_client: ShopClient,
) -> None:
    client = shop_client(records=3)
    await client.get("/customers")
    await client.get("/customers/1")
    await client.get("/customers/1")
    await client.post(
        "/customers", json={"email": "x@example.com"}, headers={"Idempotency-Key": "k"}
    )
    stats = (await client.get("/_stats")).json()
    assert stats["requests"] == 4
    assert stats["paths"] == {"/customers": 2, "/customers/1": 2}
    assert stats["faults_injected"] == 0 and stats["rate_limited"] == 0

    assert (await client.post("/_reset")).json() == {"reset": True}
    stats = (await client.get("/_stats")).json()
    assert (stats["requests"], stats["creates"], stats["paths"]) == (0, 0, {})
    assert (await client.get("/customers")).json()["total"] == 3
    # The idempotency store is gone too, so the same key creates again.
    response = await client.post(
        "/customers", json={"email": "x@example.com"}, headers={"Idempotency-Key": "k"}
    )
    assert response.status_code == 201 and "idempotent-replayed" not in response.headers
