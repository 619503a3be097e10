"""The interlink project a task works on: its config, its secrets, its database.

Every task takes `config`, the path of an `interlink.yaml` (or a loaded
`InterlinkConfig`), and loads it when it runs, in the process that runs it: a Prefect
worker on another machine reads its own copy and its own environment, and no secret
travels in a task's parameters.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from interlink.config import ConfigSource, InterlinkConfig, load_config_source
from interlink.errors import ConfigError
from interlink.http import Redactor
from interlink.store import Store

__all__ = ["ConfigLike", "Project", "load_project", "run_sync"]

T = TypeVar("T")

ConfigLike = str | os.PathLike[str] | InterlinkConfig
"""Where a task finds its project: the path of an interlink.yaml, or a loaded config."""


@dataclass(frozen=True)
class Project:
    """A loaded config, where it came from, and what must never be shown of it."""

    config: InterlinkConfig
    source: ConfigSource | None
    """The file and the line of every key; None for a config given already loaded."""
    redactor: Redactor
    """Masks every secret the config took from the environment."""

    def locate(self, error: ConfigError) -> ConfigError:
        """`error` pointed at its file and line, as `interlink run` prints it."""
        return self.source.locate(error) if self.source is not None else error

    @contextmanager
    def store(self) -> Iterator[Store]:
        """interlink's database (state, runs, tokens), opened for one task and closed after."""
        store = Store.open(self.config.database)
        try:
            yield store
        finally:
            store.close()

    def database_exists(self) -> bool:
        """Whether the database may hold state already: a server, or an SQLite file that is
        there (reading a resource never creates one)."""
        if self.config.database.backend != "sqlite":
            return True
        from sqlalchemy.engine import make_url

        path = make_url(self.config.database.url).database
        return bool(path) and path != ":memory:" and Path(str(path)).exists()


def load_project(config: ConfigLike) -> Project:
    """Load `config` (a path, or a config loaded already); ConfigError naming the file, the
    line and the key when it is wrong."""
    if isinstance(config, InterlinkConfig):
        return Project(config, None, Redactor())
    if not isinstance(config, str | os.PathLike):
        raise TypeError(
            f"config: expected the path of an interlink.yaml or an InterlinkConfig, "
            f"got {type(config).__name__}"
        )
    loaded, source = load_config_source(Path(config))
    redactor = Redactor()
    for secret in source.secrets:
        redactor.add_secret(secret)
    return Project(loaded, source, redactor)


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine `make()` to its end and return its value, from synchronous code.

    A task called from an async flow runs where an event loop is already running; the
    coroutine then runs on a loop of its own in a new thread, with this thread's context
    variables (Prefect's run context, the log forwarding).
    """
    if not _loop_running():
        # Outside the `except` that found no loop: an error out of the run must not be
        # shown "during handling of" RuntimeError('no running event loop').
        return asyncio.run(make())
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def go() -> None:
        try:
            outcome["value"] = context.run(lambda: asyncio.run(make()))
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=go, name="interlink-prefect-run")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
