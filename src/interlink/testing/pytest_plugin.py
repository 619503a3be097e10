"""pytest fixtures for testing connectors and pipelines built on interlink.

Installed with interlink as a pytest plugin (the `pytest11` entry point), or loaded by hand
with `pytest_plugins = ["interlink.testing.pytest_plugin"]` in a `conftest.py`:

- `interlink_project`: a `Project` in `tmp_path`: write `interlink.yaml`, run commands.
- `interlink_sandbox`: the sandbox shop (customers, products, orders) served on
  127.0.0.1 behind bearer token `SANDBOX_TOKEN`, with `SANDBOX_RECORDS` customers.
- `mock_api`: a serving `MockApi`; the test fails if a request went unanswered (set
  `mock_api.strict = False` first when that is what it tests).
- `interlink_replay`: `interlink_replay("tests/cassettes/shop")` makes every client the
  test builds answer from that cassette, offline.

Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from interlink.http import Cassette
    from interlink.sandbox import SandboxServer

    from ._mock_api import MockApi
    from ._project import Project

__all__ = [
    "SANDBOX_RECORDS",
    "SANDBOX_TOKEN",
    "interlink_project",
    "interlink_replay",
    "interlink_sandbox",
    "mock_api",
]

SANDBOX_TOKEN = "sandbox-test-token"
"""The bearer token `interlink_sandbox` asks for."""
SANDBOX_RECORDS = 100
"""How many customers `interlink_sandbox` serves."""


@pytest.fixture
def interlink_project(tmp_path: Path) -> Project:
    """An empty project directory with a command runner (`project.run("check")`)."""
    from ._project import Project

    return Project(tmp_path / "project")


@pytest.fixture
def interlink_sandbox() -> Iterator[SandboxServer]:
    """The sandbox shop served on 127.0.0.1 for this test (`interlink_sandbox.url`)."""
    from interlink.sandbox import SandboxServer, create_shop_app

    with SandboxServer(create_shop_app(records=SANDBOX_RECORDS, token=SANDBOX_TOKEN)) as server:
        yield server


@pytest.fixture
def mock_api() -> Iterator[MockApi]:
    """A `MockApi` serving on 127.0.0.1 (`mock_api.url`, or `mock_api.transport()`)."""
    from ._mock_api import MockApi

    mock = MockApi()
    with mock:
        yield mock
    if mock.strict:
        mock.verify()


@pytest.fixture
def interlink_replay() -> Iterator[Callable[[str | Path], Cassette]]:
    """Replay a cassette for the rest of the test: `interlink_replay("cassettes/shop")`."""
    from interlink.http import replaying

    with ExitStack() as stack:

        def replay(name: str | Path) -> Cassette:
            return stack.enter_context(replaying(name))

        yield replay
