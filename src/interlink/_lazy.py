"""Names a package exports but loads on first use (PEP 562's module `__getattr__`): what
needs SQLAlchemy or the vault stays out of a process that never touches it (issue 15,
start-up). A package lists its names under `if TYPE_CHECKING:` for the type checker and
hands the same names, by module, to `lazy_exports`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` of `package`: `names` maps each lazy name to the module (relative
    to the package) that defines it; a name, once loaded, becomes the package's own."""

    def load(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
