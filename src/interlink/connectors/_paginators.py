"""Paginators: small state objects that say what the next page request is. No I/O inside.

The reader drives them (dlt's design): `init_request` shapes the first request,
`update_state` learns from each page, `has_next_page` says whether to go on and
`update_request` shapes the next request. `state`/`restore` turn the position into a
checkpoint and back, and `plan` lists the remaining requests when the total is known, so
the reader can fetch several pages at once. `totals` tells the reader what the API
announced for the whole read, so a read that ends short of it does not pass for whole.

The paginators themselves live by family: `_position_paginators` (offset, page number)
and `_link_paginators` (cursor, next URL, `Link` header, Relay); the contract is
`_paginator_base.BasePaginator`. This module is the registry that YAML names resolve in.

Write your own by subclassing `BasePaginator` and naming it in YAML:
`paginate: {type: custom, class: mypkg.paging:MyPaginator, options: {...}}`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from interlink.errors import PaginationError

from ._link_paginators import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    RelayPaginator,
)
from ._paginator_base import BasePaginator, SinglePagePaginator
from ._position_paginators import OffsetPaginator, PageNumberPaginator

__all__ = [
    "BasePaginator",
    "CursorPaginator",
    "LinkHeaderPaginator",
    "NextUrlPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "RelayPaginator",
    "SinglePagePaginator",
    "create_paginator",
    "paginator_types",
    "register_paginator",
]


PaginatorFactory = Callable[..., BasePaginator]

_REGISTRY: dict[str, PaginatorFactory] = {
    "single": SinglePagePaginator,
    "offset": OffsetPaginator,
    "page": PageNumberPaginator,
    "cursor": CursorPaginator,
    "next_url": NextUrlPaginator,
    "link_header": LinkHeaderPaginator,
    "relay": RelayPaginator,
}


def register_paginator(name: str, factory: PaginatorFactory) -> None:
    """Make `paginate: {type: NAME, ...}` build paginators with `factory(**options)`."""
    _REGISTRY[name] = factory


def paginator_types() -> list[str]:
    return sorted(_REGISTRY)


def _import(path: str) -> PaginatorFactory:
    module_name, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise PaginationError(f"cannot import paginator {path!r}: {exc}") from None
    if not (isinstance(factory, type) and issubclass(factory, BasePaginator)):
        raise PaginationError(f"{path!r} is not a BasePaginator subclass")
    return factory


def create_paginator(spec: Any) -> BasePaginator:
    """A fresh paginator from a config model, a `{"type": ...}` dict, a name or an instance."""
    if isinstance(spec, BasePaginator):
        return spec
    if isinstance(spec, str):
        spec = {"type": spec}
    if hasattr(spec, "model_dump"):
        spec = spec.model_dump(by_alias=True)
    if not isinstance(spec, dict):
        raise TypeError(f"cannot build a paginator from {spec!r}")
    options = dict(spec)
    kind = options.pop("type", "single")
    if kind == "custom":
        factory = _import(str(options.pop("class")))
        return factory(**options.pop("options", {}))
    known = _REGISTRY.get(kind)
    if known is None:
        raise PaginationError(f"unknown paginator {kind!r}; known: {', '.join(paginator_types())}")
    return known(**options)
