"""Record a connection's real HTTP exchanges into a cassette, or answer from one offline.

Both are transports at the bottom of an `ApiClient`'s stack (under retries and rate
limits), so what is recorded is each attempt as it went over the wire, and a replay goes
through the same retries, auth flow and paginators as a live read.

Which one a client gets is decided where clients are built (`client_from_config`), so
every command, job and pipeline takes part without knowing:

```python
with recording("cassettes/shop"):         # interlink read shop.products --record cassettes/shop
    ...                                   # every client built here records; saved on exit
with replaying("cassettes/shop"):         # --replay cassettes/shop, or INTERLINK_REPLAY=...
    ...                                   # every client built here answers from the file
```

Outside such a block, the environment decides: `INTERLINK_REPLAY=cassettes/NAME` replays,
`INTERLINK_RECORD=cassettes/NAME` records (the file is written as each client closes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import httpx

from ._cassette import Cassette, cassette_path, record_exchange
from ._ratelimit import pool_size
from ._redact import Redactor

__all__ = [
    "RECORD_ENV",
    "REPLAY_ENV",
    "CassetteMode",
    "RecordingTransport",
    "ReplayTransport",
    "active_cassette",
    "forget_environment_cassettes",
    "recording",
    "replaying",
]

REPLAY_ENV = "INTERLINK_REPLAY"
"""Environment variable: the cassette every client of the process replays from."""
RECORD_ENV = "INTERLINK_RECORD"
"""Environment variable: the cassette every client of the process records into."""


@dataclass(frozen=True)
class CassetteMode:
    """A cassette and what clients do with it: record into it or replay from it."""

    mode: Literal["record", "replay"]
    cassette: Cassette


_ACTIVE: ContextVar[CassetteMode | None] = ContextVar("interlink_cassette", default=None)
# Cassettes named by the environment, one object per file for the whole process, so every
# client of a run records into (or replays from) the same one.
_FROM_ENV: dict[tuple[str, str, str], CassetteMode] = {}


class RecordingTransport(httpx.AsyncBaseTransport):
    """Sends through `inner` and keeps each exchange; masks and stores them on close.

    URLs under `base_url` (the connection's) are stored relative to it.

    Masking waits for `aclose()`: an access token the auth flow gets during the read is
    known to `redactor` only after its response was read, and must not be in the file.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        cassette: Cassette,
        *,
        connection: str,
        redactor: Redactor,
        base_url: str = "",
    ) -> None:
        self.inner = inner
        self.cassette = cassette
        self.connection = connection
        self.redactor = redactor
        self.base_url = base_url
        self._seen: list[tuple[httpx.Request, httpx.Response]] = []

    @property
    def max_connections(self) -> int | None:
        """The inner transport's pool size (the rate-limit gate reads it)."""
        return pool_size(self.inner)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self._seen.append((request, response))
        return response

    def flush(self) -> None:
        """Mask what was seen so far into the cassette and write the file."""
        seen, self._seen = self._seen, []
        self.cassette.add(
            record_exchange(
                self.connection, request, response, self.redactor, base_url=self.base_url
            )
            for request, response in seen
        )
        self.cassette.save()

    async def aclose(self) -> None:
        try:
            self.flush()
        finally:
            await self.inner.aclose()


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers every request from a cassette; nothing goes over the network.

    A request the cassette never recorded raises `CassetteMissError` naming its method,
    its URL (masked) and the cassette file.
    """

    def __init__(
        self, cassette: Cassette, *, redactor: Redactor | None = None, base_url: str = ""
    ) -> None:
        self.cassette = cassette
        self.redactor = redactor or Redactor()
        self.base_url = base_url

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.cassette.replay(request, self.redactor, base_url=self.base_url)


def _from_env() -> CassetteMode | None:
    replay, record = os.environ.get(REPLAY_ENV), os.environ.get(RECORD_ENV)
    if replay:
        # By the file itself (absolute, and as it is now): a relative name means another
        # file once the directory changes, and a file recorded again is read again.
        file = cassette_path(replay).absolute()
        try:
            stat = file.stat()
            version = f"{stat.st_mtime_ns}:{stat.st_size}"
        except OSError:
            version = ""
        key = ("replay", str(file), version)
        found = _FROM_ENV.get(key)
        if found is None:
            found = _FROM_ENV[key] = CassetteMode("replay", Cassette.load(file))
        return found
    if record:
        file = cassette_path(record).absolute()
        key = ("record", str(file), "")
        found = _FROM_ENV.get(key)
        if found is None:
            found = _FROM_ENV[key] = CassetteMode("record", Cassette.new(file))
        return found
    return None


def forget_environment_cassettes() -> None:
    """Start afresh with the cassettes `INTERLINK_RECORD` / `INTERLINK_REPLAY` name, as a
    new process would: for running several commands in one process (`Project.run`)."""
    _FROM_ENV.clear()


def active_cassette() -> CassetteMode | None:
    """The cassette clients built now record into or replay from: the innermost
    `recording()`/`replaying()` block, else `INTERLINK_REPLAY` / `INTERLINK_RECORD`."""
    return _ACTIVE.get() or _from_env()


@contextmanager
def recording(name: str | os.PathLike[str]) -> Iterator[Cassette]:
    """Clients built inside record their exchanges into cassette `name` (a new file,
    replacing an older cassette, never a file that is not one); the file is written as each
    client closes and on exit."""
    cassette = Cassette.new(name)
    previous = _ACTIVE.get()
    _ACTIVE.set(CassetteMode("record", cassette))
    try:
        yield cassette
    finally:
        _ACTIVE.set(previous)
        cassette.save()


@contextmanager
def replaying(name: str | os.PathLike[str] | Cassette) -> Iterator[Cassette]:
    """Clients built inside answer from cassette `name`, offline."""
    cassette = name if isinstance(name, Cassette) else Cassette.load(name)
    previous = _ACTIVE.get()
    _ACTIVE.set(CassetteMode("replay", cassette))
    try:
        yield cassette
    finally:
        # Not `reset(token)`: a fixture may end the block in another context than the
        # async test that began it.
        _ACTIVE.set(previous)
