"""`interlink.client.__all__` is its public surface (as tests/test_exports.py checks for the
other packages), and the client layer imports only http, config, errors and types."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import interlink.client

CLIENT = Path(interlink.client.__file__).parent
ALLOWED = {"interlink.http", "interlink.config", "interlink.errors", "interlink.types"}


def test_all_is_the_public_surface():
    module = importlib.import_module("interlink.client")
    exported = list(module.__all__)
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n))
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, type(importlib))
    }
    assert public == set(exported)


def test_the_client_imports_only_the_layers_below_it():
    for path in CLIENT.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                name = node.module
            elif isinstance(node, ast.Import):
                name = node.names[0].name
            else:
                continue
            if name.startswith("interlink.") and name != "interlink._version":
                top = ".".join(name.split(".")[:2])
                assert top in ALLOWED, f"{path.name} imports {name}"


def test_both_clients_have_the_same_methods_and_arguments():
    import inspect

    from interlink.client import AsyncJobsClient, JobsClient

    def surface(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(member).parameters)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_") and name not in {"close", "aclose"}
        }

    sync, async_ = surface(JobsClient), surface(AsyncJobsClient)
    assert sync == async_
    for name in sync:
        member = getattr(AsyncJobsClient, name)
        assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member), name
    init = [list(inspect.signature(c.__init__).parameters) for c in (JobsClient, AsyncJobsClient)]
    assert init[0] == init[1]
