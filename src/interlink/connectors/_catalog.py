"""The catalog: every resource of `interlink.yaml`, bound to its connection's ApiClient."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from interlink.config import (
    GraphQLResourceConfig,
    InterlinkConfig,
    RestResourceConfig,
    SoapResourceConfig,
)
from interlink.errors import ConfigError
from interlink.http import ApiClient

from ._graphql import GraphQLResource
from ._resource import Resource
from ._rest import ChildResource, RestResource

if TYPE_CHECKING:
    from interlink.types import TokenSource

__all__ = ["Catalog"]


class Catalog:
    """Resources by name (`shop.customers`), sharing one ApiClient per connection.

    ```python
    async with Catalog(load_config()) as catalog:
        async for page in catalog.resource("shop.customers").pages():
            ...
    ```
    """

    def __init__(
        self,
        config: InterlinkConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        token_sources: dict[str, TokenSource] | None = None,
        guard: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._transport = transport
        self._token_sources = token_sources or {}
        self._guard = guard
        """Asked before a connection is first used; raises when it may not be (switched
        off: ConnectionDisabledError)."""
        self._clients: dict[str, ApiClient] = {}
        self._resources: dict[str, Resource] = {}

    def client(self, connection: str) -> ApiClient:
        """The ApiClient of a connection, created on first use and closed with the catalog."""
        client = self._clients.get(connection)
        if client is None:
            try:
                settings = self.config.connections[connection]
            except KeyError:
                known = ", ".join(self.config.connections) or "none defined"
                raise ConfigError(
                    f"no connection named {connection!r} (connections: {known})",
                    key="connections",
                ) from None
            if self._guard is not None:
                self._guard(connection)
            client = ApiClient.from_config(
                connection,
                settings,
                transport=self._transport,
                token_source=self._token_sources.get(connection),
            )
            self._clients[connection] = client
        return client

    def resource(self, name: str) -> Resource:
        """The resource `connection.resource`; ConfigError naming the known ones if absent."""
        found = self._resources.get(name)
        if found is not None:
            return found
        try:
            connection, resource_name, settings = self.config.resource(name)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0]), key="resources") from None
        client = self.client(connection)
        full_name = f"{connection}.{resource_name}"
        resource: Resource
        if isinstance(settings, RestResourceConfig):
            rest = RestResource(full_name, client, settings)
            if settings.parent:
                parent_name = (
                    settings.parent
                    if "." in settings.parent
                    else (f"{connection}.{settings.parent}")
                )
                resource = ChildResource(
                    rest, self.resource(parent_name), concurrency=settings.concurrency
                )
            else:
                resource = rest
        elif isinstance(settings, GraphQLResourceConfig):
            resource = GraphQLResource(full_name, client, settings)
        elif isinstance(settings, SoapResourceConfig):
            # zeep and lxml load only for a SOAP resource (about 50 ms a process).
            from ._soap import SoapResource

            resource = SoapResource(full_name, client, settings)
        else:  # pragma: no cover - the config union has no other members
            raise TypeError(f"unsupported resource config {type(settings).__name__}")
        self._resources[name] = resource
        return resource

    def writable(self, name: str) -> RestResource:
        """A resource records can be written to (REST or JSON:API)."""
        resource = self.resource(name)
        if not isinstance(resource, RestResource):
            raise ConfigError(
                f"{name} is a {type(resource).__name__}; only REST resources can be written",
                key=f"resources.{name}",
            )
        return resource

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> Catalog:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
