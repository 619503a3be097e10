"""What the routes share: the config, the store, the queue and the embedded worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, Request

from interlink.config import InterlinkConfig
from interlink.jobs import Queue
from interlink.store import ApiKey, Store

__all__ = ["Context", "ServerContext", "api_key_of"]


@dataclass
class ServerContext:
    config: InterlinkConfig
    store: Store
    queue: Queue
    worker: bool = False
    concurrency: int | None = None
    worker_task: asyncio.Task[object] | None = field(default=None, repr=False)

    @property
    def worker_state(self) -> Literal["running", "stopped", "off"]:
        if not self.worker:
            return "off"
        if self.worker_task is not None and not self.worker_task.done():
            return "running"
        return "stopped"


def _context(request: Request) -> ServerContext:
    found = request.app.state.interlink
    assert isinstance(found, ServerContext)
    return found


Context = Annotated[ServerContext, Depends(_context)]


def api_key_of(request: Request) -> ApiKey | None:
    key = request.scope.get("state", {}).get("api_key")
    return key if isinstance(key, ApiKey) else None
