"""Which methods each path of the API answers to, known before routing runs.

Authentication needs it to take the scope a request needs from the route it will reach
(not from its method alone: a PUT with a read key is a 405, not a 403), and the 405
handler to list every method of a path in `Allow` (Starlette names only the first route's).
HEAD is allowed wherever GET is: it is answered as a GET without the body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.routing import APIRoute

__all__ = ["RouteIndex"]


class RouteIndex:
    """The methods of every route of `routers`, mounted at `prefix`."""

    def __init__(self, prefix: str, routers: Iterable[APIRouter]) -> None:
        self.prefix = prefix
        self.routes: list[tuple[re.Pattern[str], frozenset[str]]] = []
        for router in routers:
            for route in router.routes:
                if isinstance(route, APIRoute):
                    methods = set(route.methods or ())
                    if "GET" in methods:
                        methods.add("HEAD")
                    self.routes.append((route.path_regex, frozenset(methods)))

    def methods(self, path: str) -> frozenset[str]:
        """Every method some route at `path` answers to; empty when no route matches."""
        if not path.startswith(self.prefix):
            return frozenset()
        path = path[len(self.prefix) :]
        found: set[str] = set()
        for regex, methods in self.routes:
            if regex.match(path):
                found |= methods
        return frozenset(found)

    def allow(self, path: str) -> str | None:
        """The `Allow` header for `path`: `"GET, HEAD, POST"`, or None for no route."""
        return ", ".join(sorted(self.methods(path))) or None
