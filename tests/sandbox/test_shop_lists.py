"""The shop's list styles: complete reads, filters, links and the error envelopes."""

import math

import httpx
import pytest

from interlink.sandbox import create_shop_app, make_customers
from interlink.sandbox._pagination import encode_cursor

from .conftest import AppClient, ServeShop
from .readers import CUSTOMER_READERS, read_link, read_next_url, read_offset

SIZES = [0, 1, 99, 100, 101, 1007]
SINCE = "2023-06-01T00:00:00Z"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("style", sorted(CUSTOMER_READERS))
async def test_every_style_reads_every_record_exactly_once(
    app_client: AppClient, style: str, size: int
) -> None:
    client = app_client(create_shop_app(records=size, seed=4))
    ids, requests = await CUSTOMER_READERS[style](client, {})
    assert ids == list(range(1, size + 1))
    assert requests == max(1, math.ceil(size / 100))


@pytest.mark.parametrize("style", sorted(CUSTOMER_READERS))
async def test_every_style_filters_by_updated_since(app_client: AppClient, style: str) -> None:
    client = app_client(create_shop_app(records=1007, seed=4))
    expected = [c["id"] for c in make_customers(4, 1007) if c["updated_at"] >= SINCE]
    assert 100 < len(expected) < 1007
    ids, _ = await CUSTOMER_READERS[style](client, {"updated_since": SINCE})
    assert ids == expected


async def test_totals_count_the_filtered_records(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=500, seed=4))
    expected = sum(c["updated_at"] >= SINCE for c in make_customers(4, 500))
    page = (await client.get("/customers", params={"updated_since": SINCE})).json()
    assert page["total"] == expected
    pages = (await client.get("/customers/pages", params={"updated_since": SINCE})).json()
    assert (pages["total"], pages["total_pages"]) == (expected, math.ceil(expected / 100))
    wrapped = (await client.get("/customers/wrapped", params={"updated_since": SINCE})).json()
    assert wrapped["data"]["total"] == expected
    link = await client.get("/customers/link", params={"updated_since": SINCE})
    assert link.headers["x-total-count"] == str(expected)


@pytest.mark.parametrize(
    ("since", "normalised"),
    [
        ("2024-06-01T00:00:00Z", "2024-06-01T00:00:00Z"),
        ("2024-06-01T02:00:00+02:00", "2024-06-01T00:00:00Z"),
        ("2024-06-01T00:00:00", "2024-06-01T00:00:00Z"),
        ("2024-05-31T23:59:59.5Z", "2024-06-01T00:00:00Z"),
        ("2024-06-01", "2024-06-01T00:00:00Z"),
    ],
)
async def test_since_formats_are_equivalent(
    app_client: AppClient, since: str, normalised: str
) -> None:
    client = app_client(create_shop_app(records=300, seed=4))
    given = (await client.get("/customers", params={"updated_since": since})).json()
    plain = (await client.get("/customers", params={"updated_since": normalised})).json()
    assert given["data"] == plain["data"] and given["total"] == plain["total"]


async def test_an_unencoded_plus_in_the_offset_is_understood(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=300, seed=4))
    raw = await client.get("/customers?updated_since=2023-06-01T02:00:00+02:00")
    encoded = await client.get("/customers", params={"updated_since": SINCE})
    assert raw.json()["total"] == encoded.json()["total"] > 0


@pytest.mark.parametrize(
    "path",
    ["/customers", "/customers/pages", "/customers/cursor", "/customers/link", "/products"],
)
@pytest.mark.parametrize("since", ["yesterday", "", "2024-13-01T00:00:00Z"])
async def test_a_bad_since_is_400(app_client: AppClient, path: str, since: str) -> None:
    response = await app_client(create_shop_app(records=5)).get(
        path, params={"updated_since": since}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize(
    ("path", "size_param", "key"),
    [
        ("/customers", "limit", "data"),
        ("/customers/pages", "per_page", "customers"),
        ("/customers/cursor", "limit", "data"),
        ("/customers/next-url", "limit", "results"),
        ("/products", "limit", "data"),
        ("/orders", "limit", "data"),
    ],
)
async def test_page_sizes_default_to_100_and_are_capped_at_1000(
    app_client: AppClient, path: str, size_param: str, key: str
) -> None:
    client = app_client(create_shop_app(records=1500, seed=2))
    assert len((await client.get(path)).json()[key]) == 100
    assert len((await client.get(path, params={size_param: 5000})).json()[key]) == 1000
    assert (await client.get(path, params={size_param: 0})).status_code == 400


async def test_link_header_relations(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=250))
    first = await client.get("/customers/link", params={"per_page": 100, "updated_since": SINCE})
    expected = sum(c["updated_at"] >= SINCE for c in make_customers(42, 250))
    assert expected > 100
    assert set(first.links) == {"first", "next", "last"}
    since = SINCE.replace(":", "%3A")
    assert first.links["next"]["url"] == (
        f"http://sandbox.test/customers/link?updated_since={since}&page=2&per_page=100"
    )
    middle = await client.get("/customers/link", params={"page": 2, "per_page": 100})
    assert set(middle.links) == {"first", "prev", "next", "last"}
    assert "page=1" in middle.links["prev"]["url"]
    last = await client.get("/customers/link", params={"page": 3, "per_page": 100})
    assert set(last.links) == {"first", "prev", "last"}
    assert [c["id"] for c in last.json()] == list(range(201, 251))
    assert "page=3" in last.links["last"]["url"]
    beyond = await client.get("/customers/link", params={"page": 9})
    assert beyond.json() == [] and "next" not in beyond.links


async def test_next_and_previous_urls(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=250))
    page = (await client.get("/customers/next-url", params={"offset": 100})).json()
    assert page["count"] == 250
    assert page["next"] == "http://sandbox.test/customers/next-url?offset=200&limit=100"
    assert page["previous"] == "http://sandbox.test/customers/next-url?offset=0&limit=100"
    last = (await client.get(page["next"])).json()
    assert last["next"] is None and len(last["results"]) == 50


def test_links_are_absolute_urls_of_the_real_server(serve_shop: ServeShop) -> None:
    server = serve_shop(records=205, token="t")
    headers = {"Authorization": "Bearer t"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        response = client.get("/customers/link", params={"per_page": 100})
        assert response.links["next"]["url"] == f"{server.url}/customers/link?page=2&per_page=100"
        page = client.get("/customers/next-url").json()
        assert page["next"] == f"{server.url}/customers/next-url?offset=100&limit=100"


async def test_cursor_is_opaque_and_carries_the_filter(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=1007, seed=4))
    first = (await client.get("/customers/cursor", params={"updated_since": SINCE})).json()
    cursor = first["next_cursor"]
    assert isinstance(cursor, str) and "2024" not in cursor
    # Sending the same filter along with the cursor is fine; another filter is not.
    same = await client.get("/customers/cursor", params={"cursor": cursor, "updated_since": SINCE})
    assert same.status_code == 200
    assert same.json()["data"][0]["id"] > first["data"][-1]["id"]
    other = await client.get(
        "/customers/cursor", params={"cursor": cursor, "updated_since": "2023-01-01T00:00:00Z"}
    )
    assert other.status_code == 400 and other.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "cursor",
    ["nope", "!!!", encode_cursor(-1, None), "eyJhZnRlciI6ICJ4In0", encode_cursor(3, "2024")],
)
async def test_an_invalid_cursor_is_400(app_client: AppClient, cursor: str) -> None:
    response = await app_client(create_shop_app(records=5)).get(
        "/customers/cursor", params={"cursor": cursor}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


async def test_a_cursor_survives_new_records(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=150))
    first = (await client.get("/customers/cursor")).json()
    await client.post("/customers", json={"email": "late@example.com"})
    second = (await client.get("/customers/cursor", params={"cursor": first["next_cursor"]})).json()
    assert [c["id"] for c in second["data"]] == list(range(101, 152))
    assert second["next_cursor"] is None


async def test_wrapped_envelope_and_failure_mid_read(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=350))
    ok = await client.get("/customers/wrapped", params={"offset": 100, "fail_at": 200})
    assert ok.status_code == 200 and ok.json()["status"] == "success"
    assert [c["id"] for c in ok.json()["data"]["customers"]] == list(range(101, 201))
    failed = await client.get("/customers/wrapped", params={"offset": 200, "fail_at": 200})
    assert failed.status_code == 200
    assert failed.json() == {
        "status": "error",
        "message": "Customer export is temporarily disabled",
    }


async def test_error_envelope_is_a_200(app_client: AppClient) -> None:
    response = await app_client(create_shop_app()).get("/customers/error-envelope")
    assert response.status_code == 200
    assert response.json() == {
        "status": "error",
        "message": "Customer export is temporarily disabled",
    }


async def test_helpers_agree_with_each_other(app_client: AppClient) -> None:
    client = app_client(create_shop_app(records=333, seed=8))
    offset, _ = await read_offset(client, {})
    link, _ = await read_link(client, {})
    next_url, _ = await read_next_url(client, {})
    assert offset == link == next_url == list(range(1, 334))
