"""The whole sandbox under one port, and `interlink sandbox` that serves it."""

from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from typer.testing import CliRunner

from interlink.cli.main import app as cli
from interlink.sandbox import SandboxServer, create_sandbox_app, run_sandbox_suite, service_urls

from .readers import read_link, read_next_url

TOKEN = {"Authorization": "Bearer sandbox-token"}


@pytest.fixture(scope="module")
def suite() -> Iterator[SandboxServer]:
    app = create_sandbox_app(records=250, seed=3, commerce_records=20, commerce_overlap=5)
    with SandboxServer(app) as server:
        yield server


def test_index_lists_every_service(suite: SandboxServer) -> None:
    services = httpx.get(f"{suite.url}/").json()["services"]
    expected = service_urls(suite.url)
    for name in ("shop", "commerce", "graphql", "soap"):
        assert services[name].items() >= expected[name].items()
    assert services["commerce"]["token_url"] == f"{suite.url}/commerce/oauth2-token"
    assert services["soap"]["wsdl"] == f"{suite.url}/soap?wsdl"
    assert services["shop"]["auth"] == "Authorization: Bearer sandbox-token"


async def test_shop_links_keep_the_mount_prefix(suite: SandboxServer) -> None:
    base = f"{suite.url}/shop"
    async with httpx.AsyncClient(base_url=base, headers=TOKEN) as client:
        first = await client.get("/customers/link")
        assert first.links["next"]["url"] == f"{base}/customers/link?page=2&per_page=100"
        ids, requests = await read_link(client, {})
        assert ids == list(range(1, 251)) and requests == 3
        ids, _ = await read_next_url(client, {})
        assert ids == list(range(1, 251))
        stats = (await client.get("/_stats")).json()
    # The shop counts its own paths, without the prefix.
    assert stats["paths"]["/customers/link"] == 4
    assert httpx.get(f"{base}/customers").status_code == 401
    # Admin paths need no token under the prefix either.
    touched = httpx.post(f"{base}/_touch", json={"resource": "orders", "ids": []})
    assert touched.status_code == 200


def test_shop_location_keeps_the_mount_prefix(suite: SandboxServer) -> None:
    response = httpx.post(
        f"{suite.url}/shop/customers", json={"email": "suite@example.com"}, headers=TOKEN
    )
    assert response.status_code == 201
    assert response.headers["location"] == f"/shop/customers/{response.json()['id']}"


async def test_commerce_under_its_prefix(suite: SandboxServer) -> None:
    urls = service_urls(suite.url)["commerce"]
    async with httpx.AsyncClient() as client:
        token = (
            await client.post(
                urls["token_url"],
                data={"grant_type": "client_credentials"},
                auth=(urls["client_id"], urls["client_secret"]),
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = (
            await client.get(urls["customers"], params={"page[size]": 15}, headers=headers)
        ).json()
        assert body["meta"]["total"] == 20
        assert body["links"]["next"].startswith(f"{suite.url}/commerce/api/customers?")
        assert body["data"][0]["links"]["self"] == f"{suite.url}/commerce/api/customers/1"
        created = await client.post(
            urls["customers"],
            json={"data": {"type": "customers", "attributes": {"email": "suite@example.com"}}},
            headers={**headers, "Content-Type": "application/vnd.api+json"},
        )
        assert created.headers["location"] == f"{suite.url}/commerce/api/customers/21"
        await client.delete(created.headers["location"], headers=headers)
        stats = (await client.get(urls["stats"])).json()
        assert stats["tokens_issued"] >= 1 and stats["creates"] == 1


def test_graphql_and_soap_are_mounted(suite: SandboxServer) -> None:
    query = {"query": "{ products(first: 3) { edges { node { id sku } } } }"}
    response = httpx.post(f"{suite.url}/graphql", json=query, headers=TOKEN)
    assert response.status_code == 200
    edges = response.json()["data"]["products"]["edges"]
    assert [edge["node"]["id"] for edge in edges] == ["1", "2", "3"]
    assert httpx.post(f"{suite.url}/graphql", json=query).status_code == 401
    wsdl = httpx.get(f"{suite.url}/soap?wsdl")
    assert wsdl.status_code == 200
    assert f'location="{suite.url}/soap"' in wsdl.text


def test_unknown_paths_are_json_404(suite: SandboxServer) -> None:
    response = httpx.get(f"{suite.url}/nowhere")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_run_sandbox_suite_serves_in_the_foreground(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(self.config))
    run_sandbox_suite(8766, records=5, seed=1, token=None, rate_limit=(5, 1, 5))
    (config,) = seen
    assert (config.host, config.port) == ("127.0.0.1", 8766)
    assert isinstance(config.app, Starlette)
    assert config.app.state.shop.state.customers.total == 5


def test_cli_prints_every_url_then_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(self.config))
    result = CliRunner().invoke(cli, ["sandbox", "--port", "8767", "--records", "7", "--rate", "9"])
    assert result.exit_code == 0, result.output
    base = "http://127.0.0.1:8767"
    for text in (
        f"{base}/shop",
        f"{base}/commerce/oauth2-token",
        "commerce-client",
        "commerce-secret",
        f"{base}/graphql",
        f"{base}/soap?wsdl",
        "Bearer sandbox-token",
        "9/s, burst 20",
    ):
        assert text in result.output
    (config,) = seen
    assert config.port == 8767
    assert isinstance(config.app, Starlette)
    assert config.app.state.shop.state.customers.total == 7
