"""What the routes share: the config, the store, the queue and the embedded worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from interlink.config import InterlinkConfig
from interlink.jobs import JobKinds, Queue
from interlink.store import ApiKey, Store
from interlink.webhooks import Inbox, ProcessInbox

from ._errors import invalid_field

__all__ = ["Context", "ServerContext", "api_key_of", "known_query_only"]


@dataclass
class ServerContext:
    config: InterlinkConfig
    store: Store
    queue: Queue
    worker: bool = False
    concurrency: int | None = None
    kinds: JobKinds | None = None
    worker_task: asyncio.Task[object] | None = field(default=None, repr=False)
    inbox_process: bool = False
    """Store webhook deliveries through a writer process (`ProcessInbox`) instead of a
    writer thread: what `interlink serve` does on a SQLite file."""
    _inbox: Inbox | ProcessInbox | None = field(default=None, repr=False)

    def inbox(self) -> Inbox | ProcessInbox:
        """The webhook inbox's writer, started on the first delivery."""
        if self._inbox is None:
            if self.inbox_process:
                self._inbox = ProcessInbox(self.store, self.queue, self.config)
            else:
                self._inbox = Inbox(self.store, self.queue)
        return self._inbox

    def close_inbox(self) -> None:
        """Store the deliveries still waiting, then stop the inbox's writer."""
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            inbox.close()

    async def aclose_inbox(self) -> None:
        """`close_inbox` from the event loop (the app's shutdown): a writer process's
        answers to the last deliveries are read while it stores them."""
        inbox, self._inbox = self._inbox, None
        if isinstance(inbox, ProcessInbox):
            await inbox.aclose()
        elif inbox is not None:
            inbox.close()

    @property
    def worker_state(self) -> Literal["running", "stopped", "off"]:
        if not self.worker:
            return "off"
        if self.worker_task is not None and not self.worker_task.done():
            return "running"
        return "stopped"


# The two dependencies below are `async def` only so that FastAPI runs them on the event
# loop: they never block, and a plain `def` costs a thread-pool hop per request.
async def _context(request: Request) -> ServerContext:
    found = request.app.state.interlink
    assert isinstance(found, ServerContext)
    return found


Context = Annotated[ServerContext, Depends(_context)]


def api_key_of(request: Request) -> ApiKey | None:
    key = request.scope.get("state", {}).get("api_key")
    return key if isinstance(key, ApiKey) else None


async def known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not take: `?pipline=x` is a typo to report,
    not a filter to ignore (interlink.yaml refuses unknown keys the same way)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = {param.alias for param in route.dependant.query_params}
    for name in request.query_params:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise invalid_field(name, f"unknown query parameter (this route takes: {listed})")
