"""The SOAP sandbox: a SOAP 1.1 products service built with spyne, served over ASGI by a2wsgi.

Contract: target namespace `urn:interlink:sandbox:products`; service, port, binding and
portType all named `ProductService`; document/literal wrapped, SOAPAction = operation name.

- `GetProducts(page, pageSize)` answers `GetProductsResponse/GetProductsResult`, of type
  `GetProductsResult`: `products` (a `ProductArray` of `Product` elements), `page`,
  `pageSize`, `total` and `totalPages`. Pages count from 1 (the default); `pageSize`
  defaults to 100 and is capped at 1000. A page past the end has an empty `<products/>`
  (which zeep reads as None).
- `GetProduct(id)` answers `GetProductResponse/GetProductResult`, a `Product`. An unknown id
  is a SOAP Fault (HTTP 500) with faultcode `Client` (`soap11env:Client` on the wire) and
  faultstring `product <id> not found`; so is a page or pageSize below 1. Requests are
  schema-validated, so a malformed one is a `Client.SchemaValidationError` fault.
- `Product` has the fields of `_products.Product`: `id` (xs:integer), `sku`, `name`,
  `category`, `price` (xs:decimal, two places), `currency`, `stock`, `active` (xs:boolean)
  and `updated_at` (xs:dateTime, UTC).

The WSDL is at `GET <endpoint>?wsdl`. Its `soap:address` is rebuilt from each request's
Host header and ASGI `root_path` (the mount prefix), so it is right on any port and
behind any prefix; spyne itself would keep the address of the first WSDL request forever.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from types import ModuleType
from typing import Any, cast
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi_typing import Environ, StartResponse
from starlette.types import ASGIApp

from ._products import Product, make_product

__all__ = ["MAX_PAGE_SIZE", "NAMESPACE", "create_soap_app"]

NAMESPACE = "urn:interlink:sandbox:products"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class _SixSpecFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """spyne's bundled six (1.14) import hook, given the PEP 451 methods of six 1.16.

    The old hook has only `find_module`, so once spyne is imported every import that no
    other finder resolves warns ImportWarning on its way to an ImportError. Under
    `-W error` that warning is raised instead of the ImportError, which breaks every
    `try: import x / except ImportError` that runs later in the process.
    """

    def __init__(self, legacy: Any) -> None:
        self.legacy = legacy
        self._specs: dict[str, importlib.machinery.ModuleSpec] = {}

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if self.legacy.find_module(fullname) is None:
            return None
        return importlib.util.spec_from_loader(
            fullname, self, is_package=self.legacy.is_package(fullname)
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module: ModuleType = self.legacy.load_module(spec.name)
        if module.__spec__ is not None:
            self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # load_module returned a finished module, but importlib has since set its __spec__
        # to the alias's; a moved module (six.moves.http_cookiejar is http.cookiejar) gets
        # its own back, as the legacy import path would have left it.
        if module.__spec__ is not None and module.__spec__.name in self._specs:
            module.__spec__ = self._specs.pop(module.__spec__.name)


@functools.cache
def _import_spyne() -> None:
    """Import spyne quietly and replace its import hook by `_SixSpecFinder`, once.

    spyne is imported here and not at the top so that importing the sandbox neither needs
    the `sandbox` extra nor installs spyne's import hook until a SOAP app is built.
    """
    with warnings.catch_warnings():
        # spyne 2.14 warns while importing: its six hook lacks find_spec/exec_module
        # (ImportWarning), and its SOAP protocol imports the deprecated cgi module.
        warnings.filterwarnings("ignore", r"_SixMetaPathImporter\.", ImportWarning)
        warnings.filterwarnings("ignore", r"'cgi' is deprecated", DeprecationWarning)
        import spyne.server.wsgi  # type: ignore[import-untyped]  # noqa: F401
        from spyne.protocol.soap import Soap11  # type: ignore[import-untyped]  # noqa: F401
    for index, finder in enumerate(sys.meta_path):
        if (
            type(finder).__name__ == "_SixMetaPathImporter"
            and getattr(finder, "name", None) == "spyne.util.six"
        ):
            sys.meta_path[index] = _SixSpecFinder(finder)
    logging.getLogger("spyne.application.client").addFilter(_quiet_expected_faults)


def _quiet_expected_faults(record: logging.LogRecord) -> bool:
    # spyne logs each fault a service method raises, with a traceback, at ERROR. Ours (the
    # plain code "Client") are expected answers to unknown ids and bad paging; any other
    # fault code is logged as before.
    error = record.exc_info[1] if record.exc_info else None
    return getattr(error, "faultcode", None) != "Client"


def _soap_product(model: Any, product: Product) -> Any:
    return model(
        id=product["id"],
        sku=product["sku"],
        name=product["name"],
        category=product["category"],
        price=Decimal(product["price"]),
        currency=product["currency"],
        stock=product["stock"],
        active=product["active"],
        updated_at=datetime.fromisoformat(product["updated_at"]),
    )


def _build_application(records: int, seed: int) -> Any:
    """Build the spyne `Application`; its classes close over `records` and `seed`."""
    _import_spyne()
    from spyne import (
        Application,
        Array,
        Boolean,
        ComplexModel,
        DateTime,
        Decimal as XsdDecimal,
        Fault,
        Integer,
        ServiceBase,
        Unicode,
        rpc,
    )
    from spyne.protocol.soap import Soap11

    class Product(ComplexModel):  # type: ignore[misc]  # spyne is untyped
        __namespace__ = NAMESPACE
        _type_info = [
            ("id", Integer(min_occurs=1, nillable=False)),
            ("sku", Unicode),
            ("name", Unicode),
            ("category", Unicode),
            ("price", XsdDecimal(fraction_digits=2)),
            ("currency", Unicode),
            ("stock", Integer),
            ("active", Boolean),
            ("updated_at", DateTime(timezone=True)),
        ]

    class GetProductsResult(ComplexModel):  # type: ignore[misc]  # spyne is untyped
        __namespace__ = NAMESPACE
        _type_info = [
            ("products", Array(Product)),
            ("page", Integer),
            ("pageSize", Integer),
            ("total", Integer),
            ("totalPages", Integer),
        ]

    def client_fault(message: str) -> Exception:
        fault: Exception = Fault(faultcode="Client", faultstring=message)
        return fault

    # The method names are the operation names of the WSDL, hence the PascalCase.
    class ProductService(ServiceBase):  # type: ignore[misc]  # spyne is untyped
        @rpc(  # type: ignore[untyped-decorator]  # spyne is untyped
            Integer,
            Integer,
            _returns=GetProductsResult,
            _in_variable_names={"page_size": "pageSize"},
        )
        def GetProducts(ctx: Any, page: int | None, page_size: int | None) -> Any:
            page = 1 if page is None else page
            page_size = DEFAULT_PAGE_SIZE if page_size is None else page_size
            if page < 1:
                raise client_fault(f"page must be at least 1, not {page}")
            if page_size < 1:
                raise client_fault(f"pageSize must be at least 1, not {page_size}")
            page_size = min(page_size, MAX_PAGE_SIZE)
            first = (page - 1) * page_size + 1
            ids = range(first, min(first + page_size, records + 1))
            return GetProductsResult(
                products=[_soap_product(Product, make_product(seed, n)) for n in ids],
                page=page,
                pageSize=page_size,
                total=records,
                totalPages=-(-records // page_size),
            )

        @rpc(  # type: ignore[untyped-decorator]  # spyne is untyped
            Integer(min_occurs=1, nillable=False),
            _returns=Product,
            _in_variable_names={"product_id": "id"},
        )
        def GetProduct(ctx: Any, product_id: int) -> Any:
            if not 1 <= product_id <= records:
                raise client_fault(f"product {product_id} not found")
            return _soap_product(Product, make_product(seed, product_id))

    return Application(
        [ProductService],
        tns=NAMESPACE,
        name="ProductService",
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )


class _SoapWsgiApp:
    """spyne's WSGI application, with the WSDL's address taken from each request's URL."""

    # spyne builds its WSDL once, for the URL of the first WSDL request, and cannot build
    # it again (a second build loses the service and portType). So it is built once
    # around this placeholder, which each WSDL answer replaces with the request's URL.
    _PLACEHOLDER = "http://sandbox.invalid/interlink-soap-address"

    def __init__(self, application: Any) -> None:
        from spyne.server.wsgi import WsgiApplication

        self.wsgi = WsgiApplication(application)
        self.wsgi.doc.wsdl11.build_interface_document(self._PLACEHOLDER)
        wsdl: bytes = self.wsgi.doc.wsdl11.get_interface_document()
        self.wsdl_template = wsdl.decode()
        if self.wsdl_template.count(f'"{self._PLACEHOLDER}"') != 1:  # pragma: no cover
            raise RuntimeError("the WSDL does not hold exactly one service address")

    def wsdl(self, address: str) -> bytes:
        """Return the WSDL whose service address is `address`."""
        attribute = quoteattr(address)
        return self.wsdl_template.replace(f'"{self._PLACEHOLDER}"', attribute).encode()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not self.wsgi.is_wsdl_request(environ):
            result: Iterable[bytes] = self.wsgi(environ, start_response)
            return result
        # As PEP 3333 rebuilds a URL; SCRIPT_NAME is the mount prefix (ASGI root_path).
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        wsdl = self.wsdl(f"{environ['wsgi.url_scheme']}://{host}{path.removesuffix('.wsdl')}")
        start_response(
            "200 OK",
            [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(wsdl)))],
        )
        return [wsdl]


def create_soap_app(*, records: int = 1000, seed: int = 42) -> ASGIApp:
    """Build the SOAP sandbox app, serving `records` deterministic products.

    ```python
    with SandboxServer(create_soap_app(records=250)) as server:
        client = zeep.Client(f"{server.url}?wsdl")
        result = client.service.GetProducts(page=1, pageSize=100)
    ```
    """
    if records < 0:
        raise ValueError("records must not be negative")
    app = WSGIMiddleware(_SoapWsgiApp(_build_application(records, seed)))
    # a2wsgi spells the ASGI types with its own TypedDicts; the protocol is the same.
    return cast(ASGIApp, app)
