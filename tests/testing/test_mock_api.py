"""`MockApi`, in memory (`transport()`) and over real HTTP (`url`), with one API for both."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from interlink.errors import ApiError, ServerError
from interlink.http import ApiClient
from interlink.testing import MockApi, MockResponse


@pytest.fixture(params=["transport", "server"])
def client_for(request: pytest.FixtureRequest) -> Iterator[tuple[MockApi, ApiClient]]:
    """The same mock reached both ways: an httpx MockTransport, and uvicorn on 127.0.0.1."""
    mock = MockApi()
    if request.param == "transport":
        yield mock, ApiClient("http://mock.test", transport=mock.transport())
    else:
        with mock:
            assert mock.url.startswith("http://127.0.0.1:")
            yield mock, ApiClient(mock.url)


async def test_set_response_and_assert_called(client_for):
    mock, api = client_for
    mock.set_response("GET", "/products/123", json={"id": 123, "title": "Test Product"})
    mock.set_response("DELETE", "/products/123", status=204)
    async with api:
        assert await api.request_json("GET", "/products/123") == {
            "id": 123,
            "title": "Test Product",
        }
        assert await api.request_json("DELETE", "/products/123") is None
        await api.get("/products/123", params={"expand": "variants"})
    found = mock.assert_called("GET", "/products/123", times=2)
    assert found[1].params == {"expand": "variants"}
    mock.assert_called("GET", "/products/123", params={"expand": "variants"}, times=1)
    mock.assert_called("DELETE", "/products/{id}", times=1)
    mock.assert_not_called("POST", "/products")
    with pytest.raises(AssertionError, match=r"expected GET /products/123 3 time\(s\)"):
        mock.assert_called("GET", "/products/123", times=3)
    assert mock.unmatched == []


async def test_request_bodies_and_headers_are_captured(client_for):
    mock, api = client_for
    mock.set_response(
        "POST", "/orders", status=201, json={"id": 7}, headers={"Location": "/orders/7"}
    )
    async with api:
        response = await api.post("/orders", json={"sku": "A-1", "quantity": 2})
    assert response.status_code == 201
    assert response.headers["location"] == "/orders/7"
    [sent] = mock.assert_called("POST", "/orders", json={"sku": "A-1", "quantity": 2})
    assert sent.json() == {"sku": "A-1", "quantity": 2}
    assert sent.headers["content-type"] == "application/json"
    with pytest.raises(AssertionError, match="with that JSON body"):
        mock.assert_called("POST", "/orders", json={"sku": "other"})


async def test_queued_responses_then_error(client_for):
    mock, api = client_for
    mock.set_responses("GET", "/items", [{"json": [1]}, MockResponse(json=[2])])
    async with api:
        assert await api.get_json("/items") == [1]
        assert await api.get_json("/items") == [2]
        with pytest.raises(ServerError) as failed:
            await api.get_json("/items")
    assert failed.value.status_code == 501
    assert "the 2 queued responses for GET /items were all used" in str(failed.value)
    assert [str(r) for r in mock.unmatched] == ["GET /items"]


async def test_queued_responses_then_repeat_or_a_fixed_answer(client_for):
    mock, api = client_for
    mock.set_responses(
        "GET", "/poll", [{"json": {"state": "running"}}, {"json": {"state": "done"}}], then="repeat"
    )
    mock.set_responses("GET", "/flaky", [{"status": 502}], then={"json": {"ok": 1}})
    async with api:
        states = [(await api.get_json("/poll"))["state"] for _ in range(4)]
        assert await api.get_json("/flaky") == {"ok": 1}  # the 502 was retried
    assert states == ["running", "done", "done", "done"]
    assert mock.calls("GET", "/flaky")[0].matched


async def test_an_unmatched_request_is_a_501_naming_it(client_for):
    mock, api = client_for
    mock.set_response("GET", "/customers", json=[])
    async with api:
        with pytest.raises(ServerError) as failed:
            await api.get("/customer", params={"page": 2})
    message = str(failed.value)
    assert "501" in message
    assert "MockApi has no response for GET /customer?page=2" in message
    with pytest.raises(AssertionError, match=r"no rule matched:\n  GET /customer\?page=2"):
        mock.verify()


async def test_query_rules_and_placeholders_pick_the_most_specific(client_for):
    mock, api = client_for
    mock.set_response("GET", "/items", json={"page": 1})
    mock.set_response("GET", "/items?page=2", json={"page": 2})
    mock.set_response("GET", "/items/{id}", json={"any": True})
    mock.set_response("GET", "/items/special", json={"special": True})
    async with api:
        assert await api.get_json("/items") == {"page": 1}
        assert await api.get_json("/items", params={"page": 2, "limit": 5}) == {"page": 2}
        assert await api.get_json("/items/42") == {"any": True}
        assert await api.get_json("/items/special") == {"special": True}
    mock.set_response("GET", "/items", json={"page": "replaced"})
    async with ApiClient(api.base_url, transport=mock.transport()) as again:
        assert await again.get_json("/items") == {"page": "replaced"}


def test_guide_style_mock_response():
    mock = MockApi()
    mock.set_mock_response("/products/123", {"id": 123, "title": "Test Product", "price": 99.99})
    import httpx

    with httpx.Client(transport=httpx.MockTransport(mock._handle_httpx)) as client:
        assert client.get("http://x/products/123").json()["price"] == 99.99


def test_a_mock_response_refuses_unknown_fields():
    with pytest.raises(TypeError, match="got \\['body'\\]"):
        MockResponse.of({"body": "x"})


def test_a_whole_run_goes_through_the_mock_api(mock_api, interlink_project):
    """A connection's base_url points at the mock; `interlink run` reads through it."""
    mock_api.set_responses(
        "GET",
        "/v1/products",
        [
            {
                "json": {
                    "data": [{"id": 1, "name": "Lamp"}, {"id": 2, "name": "Desk"}],
                    "next": "/v1/products?page=2",
                }
            },
        ],
    )
    mock_api.set_response(
        "GET", "/v1/products?page=2", json={"data": [{"id": 3, "name": "Chair"}], "next": None}
    )
    interlink_project.write_config(
        f"""
        database: sqlite:///{interlink_project.path / "interlink.db"}
        connections:
          shop:
            base_url: {mock_api.url}/v1
        resources:
          shop:
            products:
              path: /products
              paginate: {{type: next_url, next_path: next}}
        pipelines:
          products:
            source: shop.products
            destination: sql:products
        """
    )
    interlink_project.run("run", "products")
    with sqlite3.connect(interlink_project.path / "interlink.db") as db:
        names = [row[0] for row in db.execute("SELECT name FROM products ORDER BY id")]
    assert names == ["Lamp", "Desk", "Chair"]
    mock_api.assert_called("GET", "/v1/products", times=2)
    mock_api.assert_called("GET", "/v1/products", params={"page": 2}, times=1)


def test_project_run_reports_a_failed_command(interlink_project):
    interlink_project.write_config("connections: {}\n")
    result = interlink_project.run("read", "shop.nothing", expect=2)
    assert "shop" in result.stderr
    with pytest.raises(AssertionError, match="expected exit code 0"):
        interlink_project.run("read", "shop.nothing")


async def test_unmatched_requests_fail_the_fixture_unless_not_strict(mock_api):
    mock_api.strict = False  # this test sends one on purpose
    async with ApiClient(mock_api.url) as api:
        with pytest.raises(ApiError):
            await api.get("/nothing")
    assert len(mock_api.unmatched) == 1
