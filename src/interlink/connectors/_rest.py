"""REST resources: list with any pagination, and get/create/update/delete by id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._api_clock import stored_time
from ._jsonapi import MEDIA_TYPE, document_for, flatten_resource
from ._page import Fetched, Page, Record, RequestSpec
from ._resource import BaseResource, Resource, fill_template
from ._selectors import is_one_record

if TYPE_CHECKING:
    import httpx

    from interlink.config import RestResourceConfig
    from interlink.http import ApiClient

__all__ = ["ChildResource", "RestResource"]


class RestResource(BaseResource):
    """Records behind a REST endpoint, plain JSON or JSON:API.

    ```python
    customers = catalog.resource("shop.customers")
    async for page in customers.pages(since="2026-01-01T00:00:00Z"):
        ...
    created = await customers.create({"email": "ada@example.com"})
    ```

    With a `parent`, the path is filled from each parent record (`/customers/{parent.id}/
    orders`); reading the child fans out over the parents (see `ChildResource`).
    """

    config: RestResourceConfig

    def __init__(
        self,
        name: str,
        client: ApiClient,
        config: RestResourceConfig,
        *,
        path: str | None = None,
    ) -> None:
        super().__init__(name, client)
        self.config = config
        self.primary_key = config.primary_key
        self.path = path or config.path
        self.jsonapi = config.format == "jsonapi"
        self._headers = dict(config.headers)
        if self.jsonapi:
            self._headers.setdefault("Accept", MEDIA_TYPE)
        self.resource_type = config.jsonapi_type or config.path.rstrip("/").rsplit("/", 1)[-1]
        # An endpoint read without pagination or `records:` may answer one object: that
        # object is the record. Anything with pagination is a list endpoint.
        self._single_object = (
            not self.jsonapi and config.records is None and config.paginate.type == "single"
        )

    def for_parent(self, parent: Record) -> RestResource:
        """This resource with `{parent.…}` in its path filled from one parent record."""
        path = fill_template(self.config.path, {"parent": parent}, what=self.name)
        return RestResource(self.name, self.client, self.config, path=path)

    def _first_request(self) -> RequestSpec:
        return RequestSpec(self.path, dict(self.config.params))

    def _transform(self) -> Callable[[Any], Record] | None:
        return flatten_resource if self.jsonapi else None

    async def _fetch(self, spec: RequestSpec) -> Fetched:
        config = self.config
        response = await self.client.request(
            config.method,
            spec.url,
            params=spec.params if config.method == "GET" else None,
            json={**(config.body or {}), **spec.params} if config.method == "POST" else None,
            headers=self._headers,
            # Listing changes nothing, even when the API wants it as a POST.
            retry_safe=True,
        )
        return Fetched(response=response, parse=self._parse, clean=self.client.strip_credentials)

    def _parse(self, response: httpx.Response) -> Any:
        body = self.client.parse_json(response)
        if self._single_object and is_one_record(body, self.primary_key):
            # `GET /products/123`: the object is the one record (no `records: "[@]"`).
            return [body]
        return body

    # -- one record -------------------------------------------------------------------------

    def _item_path(self, id: Any) -> str:
        template = self.config.item_path or f"{self.path.rstrip('/')}/{{id}}"
        return fill_template(template, {"id": id}, what=self.name)

    def _one(self, body: Any) -> Record:
        if self.jsonapi:
            return flatten_resource(body.get("data") if isinstance(body, dict) else body)
        if self.config.records and isinstance(body, dict):
            # Envelopes wrap single records the same way as lists, often under "data".
            for key in ("data", "result", "item"):
                if isinstance(body.get(key), dict):
                    return dict(body[key])
        return dict(body) if isinstance(body, dict) else {"value": body}

    def _write_headers(self) -> dict[str, str]:
        if self.jsonapi:
            return {**self._headers, "Content-Type": MEDIA_TYPE}
        return self._headers

    async def get(self, id: Any) -> Record:
        """The record with primary key `id` (NotFoundError if there is none)."""
        response = await self.client.get(self._item_path(id), headers=self._headers)
        return self._one(self.client.parse_json(response))

    async def create(self, record: Record, *, idempotency_key: str | None = None) -> Record:
        """Create a record; returns it as the API answered (with its new id)."""
        body = document_for(record, self.resource_type) if self.jsonapi else record
        response = await self.client.post(
            self.path,
            json=body,
            headers=self._write_headers(),
            idempotency_key=idempotency_key,
        )
        return self._one(self.client.parse_json(response)) if response.content else {}

    async def update(self, id: Any, record: Record) -> Record:
        """Change the given fields of record `id`; returns it as the API answered."""
        body = document_for(record, self.resource_type, id=str(id)) if self.jsonapi else record
        response = await self.client.request(
            self.config.update_method,
            self._item_path(id),
            json=body,
            headers=self._write_headers(),
        )
        return self._one(self.client.parse_json(response)) if response.content else {}

    async def delete(self, id: Any) -> None:
        await self.client.delete(self._item_path(id), headers=self._headers)


_BEGAN = "read_began"


def _began(resume: dict[str, Any] | None) -> datetime:
    """The start of the read `resume` continues (its checkpoint keeps it), or now."""
    moment = stored_time(resume.get(_BEGAN)) if resume else None
    return moment if moment is not None else datetime.now(UTC)


class ChildResource:
    """A resource whose path needs a parent record: reads fan out over the parent's records.

    Parents are read page by page; the children of one parent page are read with at most
    `concurrency` parents at once, and every child record gets `parent_key` set to its
    parent's primary key. The pages of a parent page's children carry the checkpoint from
    before that parent page, and the empty page after them the parent's checkpoint after
    it: a resumed read re-reads at most one parent page's children and skips none.
    """

    def __init__(self, child: RestResource, parent: Resource, *, concurrency: int) -> None:
        self.name = child.name
        self.child = child
        self.parent = parent
        self.config = child.config
        self.primary_key = child.primary_key
        self.concurrency = concurrency
        self.last_cursor: Any = None

    async def pages(
        self,
        *,
        since: Any = None,
        resume: dict[str, Any] | None = None,
        limit: int | None = None,
        concurrency: int | None = None,
    ) -> AsyncIterator[Page]:
        """Stream the children of every parent; arguments as `BaseResource.pages`."""
        from ._children import fan_out

        key = self.config.parent_key
        parent_key = self.parent.primary_key
        # One signpost for every child read: the whole read's start, kept by its
        # checkpoints (a child read begun later would pass changes made behind it).
        began = _began(resume)
        if resume:
            resume = {k: v for k, v in resume.items() if k != _BEGAN}
        said_already: set[str] = set()

        def child_pages(parent: Record) -> AsyncIterator[Page]:
            child = self.child.for_parent(parent)
            child.began, child.said_already = began, said_already
            return child.pages(since=since, concurrency=concurrency)

        def stamp(parent: Record, record: Record) -> Record:
            record[key] = parent.get(parent_key)
            return record

        incremental = self.config.incremental
        async for page in fan_out(
            self.parent.pages(resume=resume),
            child_pages,
            stamp,
            concurrency=self.concurrency,
            limit=limit,
            resume=resume,
            field=f"incremental.field {incremental.field!r}" if incremental else "a cursor",
        ):
            if page.done:
                self.last_cursor = page.cursor
            if page.checkpoint is not None:
                page.checkpoint = {**page.checkpoint, _BEGAN: began.isoformat()}
            yield page

    async def records(self, **kwargs: Any) -> AsyncIterator[Record]:
        async for page in self.pages(**kwargs):
            for record in page.records:
                yield record

    def __repr__(self) -> str:
        return f"ChildResource({self.name!r}, parent={self.parent.name!r})"
