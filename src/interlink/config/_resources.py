"""Pydantic models of `resources:`: what to read and write on each connection.

```yaml
resources:
  shop:                          # a connection name
    customers:                   # the resource is called shop.customers
      path: /customers
      records: data
      paginate: {type: offset, page_size: 1000}
      incremental: {field: updated_at, param: updated_since}
    orders:
      path: /customers/{parent.id}/orders
      parent: customers
      records: orders
      paginate: {type: page, page_size: 100, total_pages_path: total_pages}
```
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ._units import parse_duration

__all__ = [
    "PAGINATOR_TYPES",
    "RESOURCE_TYPES",
    "CursorPaginateConfig",
    "CustomPaginateConfig",
    "ErrorEnvelopeConfig",
    "GraphQLResourceConfig",
    "IncrementalConfig",
    "LinkHeaderPaginateConfig",
    "NextUrlPaginateConfig",
    "OffsetPaginateConfig",
    "PagePaginateConfig",
    "PaginateConfig",
    "RelayPaginateConfig",
    "ResourceConfig",
    "RestResourceConfig",
    "SinglePaginateConfig",
    "SoapResourceConfig",
    "StopWhenConfig",
    "default_resource_type",
]

PageSize = Annotated[int, Field(ge=1, le=100_000)]

# The dotted paths interlink.connectors reads without JMESPath (its `_DOTTED`); anything
# else must compile as JMESPath.
_DOTTED = re.compile(r"^[A-Za-z_$@][\w$@-]*(\.[\w$@-]+)*$")


def _selector(value: str) -> str:
    if _DOTTED.match(value):
        return value
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        reason = " ".join(str(exc).split("\n")[0].split()).rstrip(":")
        raise ValueError(
            f"expected a dotted path or JMESPath expression; got {value!r} ({reason})"
        ) from None
    return value


Selector = Annotated[str, AfterValidator(_selector)]
"""A path into a response body: `data.items`, or a JMESPath expression."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OffsetPaginateConfig(_Model):
    """`?offset=0&limit=100`, then 100, 200 ... until `total`, a short page or an empty one."""

    type: Literal["offset"]
    page_size: PageSize = 100
    offset_param: str = "offset"
    limit_param: str = "limit"
    start: Annotated[int, Field(ge=0)] = 0
    total_path: Selector | None = "total"
    overlap: Annotated[int, Field(ge=0, le=20)] | None = None


class PagePaginateConfig(_Model):
    """`?page=1&per_page=100`, then 2, 3 ... until the last page, a short page or an empty one."""

    type: Literal["page"]
    page_size: PageSize = 100
    page_param: str = "page"
    size_param: str | None = "per_page"
    start: Annotated[int, Field(ge=0)] = 1
    total_path: Selector | None = None
    total_pages_path: Selector | None = None


MaxEmptyPages = Annotated[int, Field(ge=1, le=1_000_000)]


class StopWhenConfig(_Model):
    """The page whose body has `equals` at `path` is the last: `{path: has_more, equals: false}`."""

    path: Selector
    equals: str | int | float | bool | None = False


class CursorPaginateConfig(_Model):
    """The next page's cursor at `cursor_path` in the body, sent back as `cursor_param`.

    With `cursor_field`, the cursor is that field of the page's last record instead (Stripe:
    `{cursor_field: id, cursor_param: starting_after, stop_when: {path: has_more}}`).
    """

    type: Literal["cursor"]
    cursor_path: Selector = "next_cursor"
    cursor_param: str = "cursor"
    cursor_field: Selector | None = None
    """Take the cursor from the last record's field (an id) rather than from the body."""
    stop_when: StopWhenConfig | None = None
    """End the read on the page whose body says so (`has_more: false`), cursor or not."""
    page_size: PageSize | None = None
    size_param: str = "limit"
    max_empty_pages: MaxEmptyPages = 1000
    """Empty pages in a row that still carry a cursor before the read stops as a loop."""
    total_path: Selector | None = None
    """Where the body says how many records the whole read has, if it does."""


class NextUrlPaginateConfig(_Model):
    """The next page's full URL at `next_path` in the body."""

    type: Literal["next_url"]
    next_path: Selector = "next"
    page_size: PageSize | None = None
    size_param: str = "limit"
    max_empty_pages: MaxEmptyPages = 1000
    total_path: Selector | None = None


class LinkHeaderPaginateConfig(_Model):
    """The next page's URL in the `Link` header (RFC 8288), `rel="next"` by default."""

    type: Literal["link_header"]
    rel: str = "next"
    page_size: PageSize | None = None
    size_param: str = "per_page"
    max_empty_pages: MaxEmptyPages = 1000
    total_path: Selector | None = None


class RelayPaginateConfig(_Model):
    """A GraphQL Relay connection: `pageInfo { hasNextPage endCursor }` under `path`."""

    type: Literal["relay"]
    path: Selector
    """Where the connection object sits in the body, e.g. `data.products`."""
    cursor_variable: str = "after"
    page_size: PageSize | None = 100
    size_variable: str = "first"
    max_empty_pages: MaxEmptyPages = 1000
    total_path: Selector | None = None
    """Where the total count of records sits in the body, when it is not the connection's
    `totalCount` (read by default whenever the query asks for it)."""


class SinglePaginateConfig(_Model):
    """One request, one page."""

    type: Literal["single"]
    total_path: Selector | None = None
    """Where the body says how many records the list has: a read that brings fewer (a list
    that outgrew its one page) fails instead of ending short."""


class CustomPaginateConfig(_Model):
    """Your own paginator: `class: package.module:ClassName`, built with `options`."""

    type: Literal["custom"]
    class_: str = Field(alias="class")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("class_")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
            raise ValueError(f"expected 'package.module:ClassName'; got {value!r}")
        return value


PaginateConfig = Annotated[
    OffsetPaginateConfig
    | PagePaginateConfig
    | CursorPaginateConfig
    | NextUrlPaginateConfig
    | LinkHeaderPaginateConfig
    | RelayPaginateConfig
    | SinglePaginateConfig
    | CustomPaginateConfig,
    Field(discriminator="type"),
]

PAGINATOR_TYPES = [
    "offset",
    "page",
    "cursor",
    "next_url",
    "link_header",
    "relay",
    "single",
    "custom",
]


class IncrementalConfig(_Model):
    """Read only what changed: send the last value seen of `field` as `param`."""

    field: Selector
    param: str | None = None
    """Query parameter (REST), variable (GraphQL) or argument (SOAP) that filters; None
    reads everything and keeps only records past the last value."""
    initial: str | int | float | None = None
    """The value to start from when nothing has been read yet."""
    lag: Annotated[float, BeforeValidator(parse_duration), Field(ge=0, allow_inf_nan=False)] = 0
    """How much earlier than the read's start the next read begins (`30s`, `5m`): for an
    API whose changes can show later than their time says (a long transaction, a replica
    behind). Times with a UTC offset only; see docs/connectors.md, "Changes during a read"."""


class ErrorEnvelopeConfig(_Model):
    """An error reported inside a 2xx body, e.g. `{"status": "error", "message": "..."}`."""

    path: Selector = "status"
    value: str | int | bool = "error"
    message_path: Selector = "message"


class _ResourceBase(_Model):
    records: Selector | None = None
    """Where the records sit in the body: a dotted path (`data.customers`) or a JMESPath
    expression. None: the body itself when it is a list, else its `data` key."""
    primary_key: str = "id"
    incremental: IncrementalConfig | None = None
    error: ErrorEnvelopeConfig | None = None
    paginate: PaginateConfig = SinglePaginateConfig(type="single")
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    """Pages fetched at once where the pagination allows it (offset or page with a total)."""
    on_total_mismatch: Literal["fail", "warn"] = "fail"
    """What a whole read that ends short of the count the API announced (a total field,
    `X-Total-Count`, the total pages, the `last` link) does: `fail` raises
    IncompleteReadError; `warn` ends the read, with a warning, marked incomplete (the sync
    then keeps its cursor and deletes nothing)."""

    @field_validator("paginate", mode="before")
    @classmethod
    def _paginate_shorthand(cls, value: Any) -> Any:
        # `paginate: offset` means `paginate: {type: offset}`.
        return {"type": value} if isinstance(value, str) else value


class RestResourceConfig(_ResourceBase):
    """A REST endpoint: list with pagination, get/create/update/delete by id."""

    type: Literal["rest"] = "rest"
    path: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    format: Literal["json", "jsonapi"] = "json"
    jsonapi_type: str | None = None
    """The JSON:API `type` of created records; defaults to the last path segment."""
    item_path: str | None = None
    """Path of one record, default `{path}/{id}`."""
    update_method: Literal["PATCH", "PUT"] = "PATCH"
    parent: str | None = None
    """Another resource (`customers` or `shop.customers`) whose records fill `{parent.X}`."""
    parent_key: str = "parent_id"
    """Field added to each child record holding the parent's primary key."""

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not value.startswith("/") and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected a path starting with '/' or a full URL; got {value!r}")
        return value

    @model_validator(mode="after")
    def _parent_in_path(self) -> RestResourceConfig:
        uses_parent = "{parent." in self.path
        if uses_parent and not self.parent:
            raise ValueError(f"the path {self.path!r} uses {{parent.…}} but no parent is set")
        if self.parent and not uses_parent:
            raise ValueError(
                f"parent is {self.parent!r} but the path {self.path!r} has no {{parent.…}} field"
            )
        return self


class GraphQLResourceConfig(_ResourceBase):
    """A GraphQL query; pagination variables are set by the paginator (relay by default)."""

    type: Literal["graphql"]
    path: str = "/graphql"
    query: str
    variables: dict[str, Any] = Field(default_factory=dict)


class SoapResourceConfig(_ResourceBase):
    """A SOAP operation called through zeep; pagination arguments set by the paginator."""

    type: Literal["soap"]
    wsdl: str
    """The WSDL's URL, absolute or relative to the connection's base_url (`/soap?wsdl`)."""
    operation: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    service: str | None = None
    port: str | None = None


ResourceConfig = Annotated[
    RestResourceConfig | GraphQLResourceConfig | SoapResourceConfig,
    Field(discriminator="type"),
]

RESOURCE_TYPES = ["rest", "graphql", "soap"]


def default_resource_type(value: Any) -> Any:
    """Resources are REST unless they say otherwise."""
    if isinstance(value, dict) and "type" not in value:
        return {"type": "rest", **value}
    return value
