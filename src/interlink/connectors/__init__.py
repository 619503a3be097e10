"""Connectors: the records of an API endpoint as an async stream of pages.

REST (plain JSON and JSON:API), GraphQL and SOAP resources, every common pagination style,
record selection by path or JMESPath, incremental reads and child resources, all over the
connection's `ApiClient`.
"""

import typing as _typing

from ._catalog import Catalog
from ._cursor import CursorTracker, cursor_key, higher_cursor
from ._graphql import GraphQLResource, graphql_error_message
from ._jsonapi import MEDIA_TYPE as JSONAPI_MEDIA_TYPE, document_for, flatten_resource
from ._links import parse_link_header
from ._page import Fetched, Page, Record, RequestSpec
from ._paginators import (
    BasePaginator,
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    RelayPaginator,
    SinglePagePaginator,
    create_paginator,
    paginator_types,
    register_paginator,
)
from ._reader import Extractor, read_pages
from ._resource import BaseResource, Resource, fill_template
from ._rest import ChildResource, RestResource
from ._selectors import MISSING, compile_selector

if _typing.TYPE_CHECKING:
    from ._soap import SoapResource


def __getattr__(name: str) -> _typing.Any:
    # SoapResource (zeep, lxml) is imported when it is first asked for, not with the
    # package: a REST or GraphQL read never pays for it.
    if name == "SoapResource":
        from ._soap import SoapResource

        return SoapResource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "JSONAPI_MEDIA_TYPE",
    "MISSING",
    "BasePaginator",
    "BaseResource",
    "Catalog",
    "ChildResource",
    "CursorPaginator",
    "CursorTracker",
    "Extractor",
    "Fetched",
    "GraphQLResource",
    "LinkHeaderPaginator",
    "NextUrlPaginator",
    "OffsetPaginator",
    "Page",
    "PageNumberPaginator",
    "Record",
    "RelayPaginator",
    "RequestSpec",
    "Resource",
    "RestResource",
    "SinglePagePaginator",
    "SoapResource",
    "compile_selector",
    "create_paginator",
    "cursor_key",
    "document_for",
    "fill_template",
    "flatten_resource",
    "graphql_error_message",
    "higher_cursor",
    "paginator_types",
    "parse_link_header",
    "read_pages",
    "register_paginator",
]
