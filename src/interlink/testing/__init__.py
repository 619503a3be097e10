"""The testing kit for connector and pipeline authors.

- `MockApi`: a scripted API over real HTTP (`mock.url` for `interlink.yaml`) or as an
  httpx transport (`mock.transport()` for an `ApiClient` or a `Catalog`), with request
  capture and assertions.
- `Project`: an interlink project in a directory, with a runner for its commands.
- Record/replay: `interlink read RESOURCE --record cassettes/NAME` stores the real
  exchanges (secrets masked); `replaying("cassettes/NAME")` or `INTERLINK_REPLAY` replays
  them offline (re-exported here from `interlink.http`).
- `interlink.testing.pytest_plugin`: the fixtures `interlink_project`, `interlink_sandbox`,
  `mock_api` and `interlink_replay`.

The names are imported on first use (PEP 562): pytest loads the plugin in every session,
and a session that uses none of its fixtures should not pay for interlink's HTTP stack.
See docs/testing.md.
"""

from __future__ import annotations

import typing as _typing
from importlib import import_module
from typing import Any

if _typing.TYPE_CHECKING:
    from interlink.http import Cassette, CassetteMissError, recording, replaying

    from ._mock_api import MockApi, MockRequest, MockResponse, Then
    from ._project import CommandResult, Project

__all__ = [
    "Cassette",
    "CassetteMissError",
    "CommandResult",
    "MockApi",
    "MockRequest",
    "MockResponse",
    "Project",
    "Then",
    "recording",
    "replaying",
]

_LAZY = {
    "Cassette": "interlink.http",
    "CassetteMissError": "interlink.http",
    "recording": "interlink.http",
    "replaying": "interlink.http",
    "MockApi": "interlink.testing._mock_api",
    "MockRequest": "interlink.testing._mock_api",
    "MockResponse": "interlink.testing._mock_api",
    "Then": "interlink.testing._mock_api",
    "CommandResult": "interlink.testing._project",
    "Project": "interlink.testing._project",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'interlink.testing' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
