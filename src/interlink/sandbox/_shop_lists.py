"""The shop's customers in every list style a connector must read (see `_shop`'s
docstring for each style's shape): the offset page every list shares, page numbers, the
`Link` header, an opaque cursor, a next URL, and the wrapped and error envelopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ._data import CustomerStore
from ._pagination import (
    decode_cursor,
    encode_cursor,
    link_header,
    page_size,
    query_int,
    since_param,
    total_pages,
    url_with,
)
from ._responses import JSONResponse, error_response
from ._store import BaseRecordStore

__all__ = ["ERROR_ENVELOPE", "CustomerLists", "numbered_page", "offset_page"]

ERROR_ENVELOPE = {"status": "error", "message": "Customer export is temporarily disabled"}


def offset_page(request: Request, store: BaseRecordStore[Any]) -> dict[str, Any]:
    """`?offset=&limit=&updated_since=` of `store`: the page, the filtered total, the
    offset and limit as applied."""
    offset = query_int(request, "offset", 0, minimum=0)
    limit = page_size(request, "limit")
    since = since_param(request)
    return {
        "data": store.page(offset, limit, since),
        "total": store.count(since),
        "offset": offset,
        "limit": limit,
    }


def numbered_page(
    request: Request, count: Callable[[str | None], int]
) -> tuple[int, int, str | None, int, int]:
    """`?page=&per_page=&updated_since=`: (page, per_page, since, total, total_pages)."""
    page = query_int(request, "page", 1, minimum=1)
    per_page = page_size(request, "per_page")
    since = since_param(request)
    total = count(since)
    return page, per_page, since, total, total_pages(total, per_page)


class CustomerLists:
    """The route handlers of the customers' list styles."""

    def __init__(self, customers: CustomerStore) -> None:
        self.customers = customers

    async def customers_next_url(self, request: Request) -> Response:
        page = offset_page(request, self.customers)
        offset, limit, total = page["offset"], page["limit"], page["total"]
        more = offset + limit < total
        return JSONResponse(
            {
                "count": total,
                "next": url_with(request, offset=offset + limit, limit=limit) if more else None,
                "previous": (
                    url_with(request, offset=max(offset - limit, 0), limit=limit)
                    if offset > 0
                    else None
                ),
                "results": page["data"],
            }
        )

    async def customers_wrapped(self, request: Request) -> Response:
        fail_at = query_int(request, "fail_at", -1, minimum=0)
        page = offset_page(request, self.customers)
        if 0 <= fail_at <= page["offset"]:
            return JSONResponse(ERROR_ENVELOPE)
        return JSONResponse(
            {"status": "success", "data": {"customers": page["data"], "total": page["total"]}}
        )

    async def customers_error_envelope(self, request: Request) -> Response:
        return JSONResponse(ERROR_ENVELOPE)

    # -- lists: page numbers, Link header, cursor ------------------------------------------

    async def customers_pages(self, request: Request) -> Response:
        page, per_page, since, total, pages = numbered_page(request, self.customers.count)
        return JSONResponse(
            {
                "customers": self.customers.page((page - 1) * per_page, per_page, since),
                "page": page,
                "per_page": per_page,
                "total": total,
                "total_pages": pages,
            }
        )

    async def customers_link(self, request: Request) -> Response:
        page, per_page, since, total, pages = numbered_page(request, self.customers.count)
        last = max(pages, 1)
        links = [(url_with(request, page=1, per_page=per_page), "first")]
        if page > 1:
            links.append((url_with(request, page=min(page - 1, last), per_page=per_page), "prev"))
        if page < pages:
            links.append((url_with(request, page=page + 1, per_page=per_page), "next"))
        links.append((url_with(request, page=last, per_page=per_page), "last"))
        return JSONResponse(
            self.customers.page((page - 1) * per_page, per_page, since),
            headers={"Link": link_header(links), "X-Total-Count": str(total)},
        )

    async def customers_cursor(self, request: Request) -> Response:
        limit = page_size(request, "limit")
        since = since_param(request)
        cursor = request.query_params.get("cursor")
        after = 0
        if cursor:
            try:
                after, cursor_since = decode_cursor(cursor)
            except ValueError:
                return error_response(400, "invalid_cursor", "The cursor is not valid.")
            if "updated_since" in request.query_params and since != cursor_since:
                return error_response(
                    400, "invalid_cursor", "updated_since differs from the cursor's filter."
                )
            since = cursor_since
        records, more = self.customers.after(after, limit, since)
        next_cursor = encode_cursor(records[-1]["id"], since) if more and records else None
        return JSONResponse({"data": records, "next_cursor": next_cursor})
