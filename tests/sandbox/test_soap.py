import http.cookiejar
import importlib
import re
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import zeep
import zeep.helpers
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from interlink.sandbox._graphql import create_graphql_app
from interlink.sandbox._products import Product, make_product
from interlink.sandbox._server import SandboxServer
from interlink.sandbox._soap import NAMESPACE, create_soap_app

Serve = Callable[[ASGIApp], SandboxServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Serve an ASGI app on a real local port; stopped after the test."""
    servers: list[SandboxServer] = []

    def start(app: ASGIApp) -> SandboxServer:
        server = SandboxServer(app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


SIZES = [0, 1, 99, 100, 101, 1007]


@pytest.fixture(scope="module")
def shared() -> Iterator[str]:
    """One real server for the read-only apps of this module, each mounted at its own prefix.

    Returns the server's URL; `/size<N>/` serves N products of seed 11 and `/twenty/` 20
    of seed 5.
    """
    apps = {f"size{n}": create_soap_app(records=n, seed=11) for n in SIZES}
    apps["twenty"] = create_soap_app(records=20, seed=5)
    with SandboxServer(Starlette(routes=[Mount(f"/{k}", v) for k, v in apps.items()])) as server:
        yield server.url


def as_dict(product: Any) -> dict[str, Any]:
    return dict(zeep.helpers.serialize_object(product, dict))


def as_soap(product: Product) -> dict[str, Any]:
    """`product` as zeep reads it from the service: typed by the WSDL."""
    return {
        **product,
        "price": Decimal(product["price"]),
        "updated_at": datetime.fromisoformat(product["updated_at"]),
    }


def address_of(client: zeep.Client) -> str:
    address: str = (
        client.wsdl.services["ProductService"].ports["ProductService"].binding_options["address"]
    )
    return address


def page_products(result: Any) -> list[Any]:
    # zeep reads an empty <products/> array as None.
    return list(result.products.Product) if result.products is not None else []


@pytest.mark.parametrize("records", SIZES)
def test_get_products_pages_through_every_product_once(shared: str, records: int) -> None:
    client = zeep.Client(wsdl=f"{shared}/size{records}/?wsdl")
    seen: list[dict[str, Any]] = []
    page = 1
    while True:
        result = client.service.GetProducts(page=page, pageSize=100)
        assert (result.page, result.pageSize, result.total) == (page, 100, records)
        assert result.totalPages == -(-records // 100)
        products = page_products(result)
        if not products:
            break
        seen += [as_dict(product) for product in products]
        page += 1
    assert page == result.totalPages + 1
    assert seen == [as_soap(make_product(11, n)) for n in range(1, records + 1)]


def test_page_size_is_capped_and_defaults_apply(shared: str) -> None:
    client = zeep.Client(wsdl=f"{shared}/size1007/?wsdl")
    capped = client.service.GetProducts(page=2, pageSize=5000)
    assert (capped.pageSize, capped.totalPages, len(page_products(capped))) == (1000, 2, 7)
    assert page_products(capped)[0].id == 1001
    default = client.service.GetProducts()
    assert (default.page, default.pageSize, len(page_products(default))) == (1, 100, 100)


def test_get_product_and_the_fault_for_an_unknown_id(shared: str) -> None:
    client = zeep.Client(wsdl=f"{shared}/twenty/?wsdl")
    assert as_dict(client.service.GetProduct(id=20)) == as_soap(make_product(5, 20))
    for unknown in (0, 21, -3):
        with pytest.raises(zeep.exceptions.Fault) as caught:
            client.service.GetProduct(id=unknown)
        assert caught.value.message == f"product {unknown} not found"
        # A SOAP 1.1 Client fault: the code is a QName in the envelope namespace.
        assert caught.value.code.split(":")[-1] == "Client"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"page": 0}, "page must be at least 1, not 0"), ({"pageSize": 0}, "pageSize must be at")],
)
def test_bad_paging_arguments_are_client_faults(
    shared: str, arguments: dict[str, int], message: str
) -> None:
    client = zeep.Client(wsdl=f"{shared}/twenty/?wsdl")
    with pytest.raises(zeep.exceptions.Fault, match=message) as caught:
        client.service.GetProducts(**arguments)
    assert caught.value.code.split(":")[-1] == "Client"


def test_the_wsdl_points_back_at_the_server_that_served_it(serve: Serve) -> None:
    server = serve(create_soap_app(records=5))
    client = zeep.Client(wsdl=f"{server.url}?wsdl")
    assert address_of(client) == f"{server.url}/"
    assert client.wsdl.types.get_type(f"{{{NAMESPACE}}}Product") is not None
    operations = client.wsdl.bindings[f"{{{NAMESPACE}}}ProductService"].all()
    assert set(operations) == {"GetProducts", "GetProduct"}
    # Built for each request, not kept from the first one (which spyne alone would do).
    with httpx.Client(base_url=server.url) as http:
        other_host = http.get("/?wsdl", headers={"Host": "soap.example:8080"})
        dot_wsdl = http.get("/service.wsdl")
    assert 'location="http://soap.example:8080/"' in other_host.text
    assert 'location="http://soap.example:8080/"' not in dot_wsdl.text
    assert f'location="{server.url}/service"' in dot_wsdl.text
    assert other_host.headers["content-type"] == "text/xml; charset=utf-8"


def test_apps_under_a_starlette_mount(serve: Serve) -> None:
    soap, graphql = create_soap_app(records=150, seed=2), create_graphql_app(records=150, seed=2)
    server = serve(Starlette(routes=[Mount("/soap", app=soap), Mount("/graphql", app=graphql)]))

    # Mount("/soap") answers "/soap/..."; "GET /soap?wsdl" is redirected there (307), which
    # zeep follows, so the address is the one the WSDL really came from.
    client = zeep.Client(wsdl=f"{server.url}/soap?wsdl")
    assert address_of(client) == f"{server.url}/soap/"
    pages = [client.service.GetProducts(page=page, pageSize=100) for page in (1, 2)]
    ids = [product.id for result in pages for product in page_products(result)]
    assert ids == list(range(1, 151))

    query = {"query": "{ products(first: 1000) { totalCount edges { node { id } } } }"}
    answer = httpx.post(f"{server.url}/graphql/", json=query).json()
    assert answer["data"]["products"]["totalCount"] == 150


def test_route_and_mount_answer_the_exact_prefix(serve: Serve) -> None:
    soap, graphql = create_soap_app(records=3), create_graphql_app(records=3)
    routes = [
        Route("/soap", soap),
        Mount("/soap", app=soap),
        Route("/graphql", graphql),
        Mount("/graphql", app=graphql),
    ]
    server = serve(Starlette(routes=routes))
    with httpx.Client(base_url=server.url) as http:
        wsdl = http.get("/soap?wsdl")
        graphql_answer = http.post("/graphql", json={"query": "{ products { totalCount } }"})
    assert wsdl.status_code == 200
    [location] = re.findall(r'<wsdlsoap11:address location="([^"]+)"', wsdl.text)
    assert location == f"{server.url}/soap"
    assert graphql_answer.json() == {"data": {"products": {"totalCount": 3}}}

    client = zeep.Client(wsdl=f"{server.url}/soap?wsdl")
    assert client.service.GetProduct(id=3).sku == "SKU-000003"


def test_spyne_leaves_failing_imports_raising_import_error() -> None:
    # spyne's bundled six hooks into sys.meta_path; under -W error its legacy hook would turn
    # every later failed import into an ImportWarning instead of an ImportError.
    create_soap_app(records=1)
    assert "spyne" in sys.modules
    with pytest.raises(ImportError):
        importlib.import_module("interlink_no_such_module")
    # six.moves imports still work through the hook, and leave the real module's spec alone.
    moved = importlib.import_module("spyne.util.six.moves.http_cookiejar")
    assert moved is http.cookiejar
    assert http.cookiejar.__spec__ is not None
    assert http.cookiejar.__spec__.name == "http.cookiejar"
