"""A small real API with the quirks of issue 10, served on 127.0.0.1 by `SandboxServer`.

Each route behaves like a third party we met that made a read stop early, or never stop:

- `GET /json-server/items` ignores every paging parameter and answers all items as a bare
  list, as json-server does with `offset`/`limit` (it knows only `_page`/`_limit`).
- `GET /capped?page=&per_page=` caps `per_page` at `CAP` (50) and says `{"items", "total"}`.
- `GET /clamped?page=&per_page=` answers the last page again for any page past the end.
- `GET /link-on-page?page=&per_page=` sends `Link` (`next`, `last`) only when the request
  names a `page`; `X-Total-Count` always.
- `GET /sparse/{style}?after=&limit=` is a filtered scan: each page looks at `limit` ids
  and returns the matching ones, often none, with a next cursor (`style` cursor), next URL
  (`next_url`) or `Link` (`link`) while ids remain; `X-Total-Count` counts the matches.
- `GET /short?offset=&limit=` announces `total` 1000 but has only 900 items; so does
  `GET /short-drf?offset=&limit=` as `count`, with Django REST framework's next links.
- `GET /shrinking?after=&limit=` deletes the last item ahead of the reader on every
  request (the source changes during the read); `X-Total-Count` is the count now.
- `GET /stamped?offset=&limit=` serves `STAMPED`: items whose `changed` values mix ISO
  formats (fractions, offsets) and whose `version` values are numeric strings.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CAP = 50

STAMPED = [
    {"id": 1, "changed": "2026-01-05T10:00:00Z", "version": "999"},
    {"id": 2, "changed": "2026-01-05T10:00:00.250Z", "version": "1000"},
    {"id": 3, "changed": "2026-01-05T11:30:00+02:00", "version": "998"},
    {"id": 4, "changed": "2026-01-05T09:59:59.999999999Z", "version": "10"},
]
"""Text order would pick id 1 as the latest `changed` and id 1 as the highest `version`;
the true maxima are id 2 (10:00:00.250Z; id 3 is 09:30Z) and id 2 ("1000")."""


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    return int(raw) if raw is not None else default


class QuirkyApi:
    """The routes' state: the items, the sparse scan's matches, and a request log."""

    def __init__(self, records: int = 5000) -> None:
        self.items = [{"id": i, "name": f"item {i}"} for i in range(1, records + 1)]
        self.scan = list(range(1, 1001))
        self.matches = {i for i in self.scan if i > 800 and i % 7 == 0}
        self.shrinking = [{"id": i} for i in range(1, 301)]
        self.requests: list[str] = []

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/json-server/items", self.json_server),
                Route("/capped", self.capped),
                Route("/clamped", self.clamped),
                Route("/link-on-page", self.link_on_page),
                Route("/sparse/{style}", self.sparse),
                Route("/short", self.short),
                Route("/short-drf", self.short_drf),
                Route("/shrinking", self.shrinking_list),
                Route("/stamped", self.stamped),
            ]
        )

    def _log(self, request: Request) -> None:
        self.requests.append(str(request.url.replace(scheme="", netloc="")))

    async def json_server(self, request: Request) -> JSONResponse:
        self._log(request)
        return JSONResponse(self.items)

    async def capped(self, request: Request) -> JSONResponse:
        self._log(request)
        page = _int(request, "page", 1)
        per_page = min(_int(request, "per_page", 10), CAP)
        start = (page - 1) * per_page
        body = {"items": self.items[start : start + per_page], "total": len(self.items)}
        return JSONResponse(body)

    async def clamped(self, request: Request) -> JSONResponse:
        self._log(request)
        per_page = _int(request, "per_page", 10)
        last = max(1, -(-len(self.items) // per_page))
        start = (min(_int(request, "page", 1), last) - 1) * per_page
        return JSONResponse(self.items[start : start + per_page])

    async def link_on_page(self, request: Request) -> JSONResponse:
        self._log(request)
        per_page = _int(request, "per_page", 30)
        page = _int(request, "page", 1)
        start = (page - 1) * per_page
        headers = {"X-Total-Count": str(len(self.items))}
        if "page" in request.query_params:
            last = max(1, -(-len(self.items) // per_page))
            links = [f'<{request.url.include_query_params(page=last)}>; rel="last"']
            if page < last:
                following = request.url.include_query_params(page=page + 1)
                links.insert(0, f'<{following}>; rel="next"')
            headers["Link"] = ", ".join(links)
        return JSONResponse(self.items[start : start + per_page], headers=headers)

    async def sparse(self, request: Request) -> JSONResponse:
        self._log(request)
        after = _int(request, "after", 0)
        limit = _int(request, "limit", 100)
        looked = [i for i in self.scan if i > after][:limit]
        found = [{"id": i} for i in looked if i in self.matches]
        more = bool(looked) and looked[-1] < self.scan[-1]
        following = str(request.url.include_query_params(after=looked[-1])) if more else None
        headers = {"X-Total-Count": str(len(self.matches))}
        style = request.path_params["style"]
        body: Any
        if style == "cursor":
            body = {"data": found, "next_cursor": str(looked[-1]) if more else None}
        elif style == "next_url":
            body = {"results": found, "next": following}
        else:
            body = found
            if following:
                headers["Link"] = f'<{following}>; rel="next"'
        return JSONResponse(body, headers=headers)

    async def short(self, request: Request) -> JSONResponse:
        self._log(request)
        offset, limit = _int(request, "offset", 0), _int(request, "limit", 100)
        return JSONResponse({"data": self.items[:900][offset : offset + limit], "total": 1000})

    async def short_drf(self, request: Request) -> JSONResponse:
        self._log(request)
        offset, limit = _int(request, "offset", 0), _int(request, "limit", 100)
        page = self.items[:900][offset : offset + limit]
        more = offset + limit < 900
        following = request.url.include_query_params(offset=offset + limit) if more else None
        body = {"count": 1000, "next": following and str(following), "results": page}
        return JSONResponse(body)

    async def shrinking_list(self, request: Request) -> JSONResponse:
        self._log(request)
        after, limit = _int(request, "after", 0), _int(request, "limit", 100)
        page = [item for item in self.shrinking if item["id"] > after][:limit]
        del self.shrinking[-1]  # someone deletes a record the reader has not reached
        following = page[-1]["id"] if page and page[-1]["id"] < self.shrinking[-1]["id"] else None
        body = {"data": page, "next_cursor": None if following is None else str(following)}
        return JSONResponse(body, headers={"X-Total-Count": str(len(self.shrinking))})

    async def stamped(self, request: Request) -> JSONResponse:
        self._log(request)
        return JSONResponse({"data": STAMPED, "total": len(STAMPED)})
