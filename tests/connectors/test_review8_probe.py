"""Review 8: the probe after a short first page, attacked.

A first page shorter than asked, with no total, asks for one page more; a 400/404/416 to
that probe ends the list. These tests resume a read from the checkpoint of that short
first page, as a run that died (or failed on the probe) after committing it does.
"""

from __future__ import annotations

from typing import Any

from interlink.connectors import Catalog
from interlink.sandbox import SandboxServer

from .test_totals_capped import CappingApi, ShortListApi, catalog


async def first_checkpoint(cat: Catalog) -> dict[str, Any]:
    async with cat:
        async for page in cat.resource("api.items").pages():
            assert page.checkpoint is not None, "the short first page ended the read"
            return page.checkpoint
    raise AssertionError("no page")


async def resumed_ids(cat: Catalog, checkpoint: dict[str, Any]) -> list[int]:
    ids: list[int] = []
    async with cat:
        async for page in cat.resource("api.items").pages(resume=checkpoint):
            ids.extend(record["id"] for record in page.records)
            assert page.number < 100, "the read does not stop"
    return ids


async def test_a_read_resumed_at_the_probe_ends_on_its_404():
    """DRF answers 404 past the last page. A run that committed the short first page and
    died before the probe's answer resumes at the probe: its 404 ends the list there too,
    instead of failing every resumed run of the pipeline."""
    api = ShortListApi()
    with SandboxServer(api.app()) as server:
        resource = {"path": "/pages", "paginate": {"type": "page"}}
        checkpoint = await first_checkpoint(catalog(server.url, resource))
        assert checkpoint.get("page") == 2
        assert await resumed_ids(catalog(server.url, resource), checkpoint) == []
        assert any("page=2" in query for query in api.requests), "the probe was not sent"


async def test_a_capped_read_resumed_at_the_probe_reads_the_rest():
    """The server caps the page size silently: the resumed probe is a real page, and the
    read goes on to the end."""
    api = CappingApi()
    with SandboxServer(api.app()) as server:
        resource = {"path": "/pages", "paginate": {"type": "page", "page_size": 1000}}
        checkpoint = await first_checkpoint(catalog(server.url, resource))
        ids = await resumed_ids(catalog(server.url, resource), checkpoint)
        assert sorted(ids) == list(range(101, 251))
