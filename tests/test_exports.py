"""Each public package's __all__ names every public name it defines, once (httpx's habit)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "interlink.config",
    "interlink.http",
    "interlink.errors",
    "interlink.sandbox",
    "interlink.store",
    "interlink.sync",
    "interlink.jobs",
    "interlink.server",
    "interlink.client",
    "interlink.webhooks",
    "interlink.connectors",
    "interlink.oauth",
    "interlink.metrics",
    "interlink.server.dashboard",
    "interlink.testing",
    "interlink.prefect",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_the_public_surface(name):
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), "a name is exported twice"
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith(("_", "@"))  # `@py_builtins`: pytest's assertion rewriting
        and not isinstance(value, type(importlib))  # submodules
        and getattr(value, "__module__", name).startswith("interlink")
    }
    assert public <= set(exported), f"public but not exported: {public - set(exported)}"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr}"


def test_root_exports_resolve_lazily():
    import interlink

    for attr in interlink.__all__:
        assert getattr(interlink, attr) is not None
    with pytest.raises(AttributeError):
        _ = interlink.nothing_here  # type: ignore[attr-defined]
