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
from interlink.webhooks import Inbox

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
    _inbox: Inbox | None = field(default=None, repr=False)

    def inbox(self) -> Inbox:
        """The webhook inbox's writer, started on the first delivery."""
        if self._inbox is None:
            self._inbox = Inbox(self.store, self.queue)
        return self._inbox

    def close_inbox(self) -> None:
        """Store the deliveries still waiting, then stop the inbox's writer."""
        if self._inbox is not None:
            self._inbox.close()
            self._inbox = None

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
