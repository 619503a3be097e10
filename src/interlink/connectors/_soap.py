"""SOAP resources: zeep's async client, sending through the connection's ApiClient.

zeep builds the envelopes and parses the answers; every byte still goes through
interlink's HTTP stack, so SOAP calls get the connection's auth, rate limit, retries,
logging and redaction like any other request. zeep reads the WSDL synchronously, so it runs
in a worker thread whose document fetches are handed back to the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import logging
import re
from typing import TYPE_CHECKING, Any

import httpx
import zeep
import zeep.exceptions
import zeep.helpers
import zeep.transports
from zeep.wsdl.utils import etree_to_string

from interlink.errors import ApiError, RequestRejectedError, ServerError

from ._page import Fetched, RequestSpec
from ._resource import BaseResource

if TYPE_CHECKING:
    from interlink.config import SoapResourceConfig
    from interlink.http import ApiClient

__all__ = ["SoapResource", "plain"]

# SOAP 1.1 sends every fault as HTTP 500; a fault the client caused will not go away.
_CLIENT_FAULT = re.compile(rb"<(?:\w+:)?faultcode>[^<]*(?:Client|Sender)</", re.IGNORECASE)


def _client_fault_veto(response: httpx.Response) -> bool | None:
    return False if _CLIENT_FAULT.search(response.content[:4096]) else None


def plain(value: Any) -> Any:
    """zeep's result objects as JSON-able dicts, lists and scalars."""
    value = zeep.helpers.serialize_object(value, dict)
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class _ApiClientTransport(zeep.transports.AsyncTransport):
    """A zeep transport whose requests are sent by an ApiClient."""

    def __init__(self, client: ApiClient, loop: asyncio.AbstractEventLoop) -> None:
        # zeep's own __init__ would open httpx clients that interlink never uses.
        self._close_session = False  # read by zeep's Transport.__del__
        self.cache = None
        self.load_timeout = None
        self.operation_timeout = None
        self._client = client
        self._loop = loop
        self.logger = logging.getLogger("zeep.transports")

    def _load_remote_data(self, url: str) -> bytes:
        # Called by zeep in a worker thread while it parses the WSDL and its imports.
        future = asyncio.run_coroutine_threadsafe(self._client.get(url), self._loop)
        return future.result().content

    async def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> Any:
        content = message.encode() if isinstance(message, str) else message
        request = self._client.build_request(
            "POST", address, content=content, headers=headers, retry_safe=True
        )
        request.extensions["interlink.should_retry"] = _client_fault_veto
        return await self._client.send(request, raise_for_status=False)

    async def post_xml(self, address: str, envelope: Any, headers: dict[str, str]) -> Any:
        response = await self.post(address, etree_to_string(envelope), headers)
        return zeep.transports.AsyncTransport.new_response(self, response)

    async def get(self, address: str, params: Any, headers: dict[str, str]) -> Any:
        response = await self._client.get(address, params=params, headers=headers)
        return zeep.transports.AsyncTransport.new_response(self, response)

    async def aclose(self) -> None:
        return None


class SoapResource(BaseResource):
    """Records returned by a SOAP operation, paged through its arguments.

    ```yaml
    products:
      type: soap
      wsdl: /soap?wsdl
      operation: GetProducts
      records: products.Product
      paginate: {type: page, page_param: page, size_param: pageSize, total_pages_path: totalPages}
    ```

    A SOAP fault raises `RequestRejectedError` (client faults) or `ServerError` with the
    fault's message; results are plain dicts (decimals as strings, dates as ISO-8601).
    """

    config: SoapResourceConfig
    nulls_are_empty = True  # zeep gives an empty `<products/>` as `products: None`

    def __init__(self, name: str, client: ApiClient, config: SoapResourceConfig) -> None:
        super().__init__(name, client)
        self.config = config
        self.primary_key = config.primary_key
        self._service: Any = None
        self._lock = asyncio.Lock()

    def _wsdl_url(self) -> str:
        wsdl = self.config.wsdl
        if wsdl.startswith(("http://", "https://", "file://")) or not wsdl.startswith("/"):
            return wsdl
        return f"{self.client.base_url}{wsdl}"

    async def service(self) -> Any:
        """The zeep service proxy, loading the WSDL through the ApiClient on first use."""
        async with self._lock:
            if self._service is None:
                transport = _ApiClientTransport(self.client, asyncio.get_running_loop())
                try:
                    zeep_client = await asyncio.to_thread(
                        zeep.AsyncClient, self._wsdl_url(), transport=transport
                    )
                except (zeep.exceptions.Error, ValueError, OSError) as exc:
                    raise ApiError(
                        f"cannot load the WSDL {self._wsdl_url()}: {exc}",
                        url=self.client.redactor.url(self._wsdl_url()),
                    ) from exc
                config = self.config
                if config.service or config.port:
                    self._service = zeep_client.bind(config.service, config.port)
                else:
                    self._service = zeep_client.service
        return self._service

    def _first_request(self) -> RequestSpec:
        # For SOAP the request's "url" is the operation, its params the arguments.
        return RequestSpec(self.config.operation, dict(self.config.arguments))

    async def call(self, operation: str, **arguments: Any) -> Any:
        """Call any operation of the service; returns its result as plain data."""
        service = await self.service()
        try:
            method = getattr(service, operation)
        except AttributeError:
            raise ApiError(f"the WSDL has no operation {operation!r}") from None
        try:
            result = await method(**arguments)
        except zeep.exceptions.Fault as fault:
            code = str(fault.code or "")
            kind = RequestRejectedError if re.search("client|sender", code, re.I) else ServerError
            raise kind(f"SOAP fault {code}: {fault.message}", method="POST") from None
        except zeep.exceptions.TransportError as exc:
            raise ServerError(
                f"SOAP call {operation} failed with HTTP {exc.status_code}",
                method="POST",
                status_code=exc.status_code,
            ) from None
        except (TypeError, zeep.exceptions.ValidationError) as exc:
            raise RequestRejectedError(f"bad arguments for {operation}: {exc}") from None
        return plain(result)

    async def _fetch(self, spec: RequestSpec) -> Fetched:
        return Fetched(await self.call(spec.url, **spec.params))
