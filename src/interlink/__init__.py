"""interlink: API-integration middleware.

The names most programs need are here; everything else lives in its subpackage
(`interlink.http`, `interlink.config`, ...). They are imported on first use (PEP 562), so
`import interlink` stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from interlink._version import __version__

if TYPE_CHECKING:
    from interlink.config import InterlinkConfig, load_config
    from interlink.errors import ApiError, ConfigError, InterlinkError
    from interlink.http import ApiClient

__all__ = [
    "ApiClient",
    "ApiError",
    "ConfigError",
    "InterlinkConfig",
    "InterlinkError",
    "__version__",
    "load_config",
]

_LAZY = {
    "ApiClient": "interlink.http",
    "ApiError": "interlink.errors",
    "ConfigError": "interlink.errors",
    "InterlinkConfig": "interlink.config",
    "InterlinkError": "interlink.errors",
    "load_config": "interlink.config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'interlink' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
