"""The `interlink` command line: `app` is the Typer application (the console script's entry
point is `interlink.__main__.main`).

`app` loads on first use: the console script runs `interlink run` without building the
Typer app (`interlink.__main__`, `cli._direct`), and importing one of this package's
modules must not build it either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlink._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from interlink.cli.main import app

__getattr__ = _lazy_exports(__name__, {"app": ".main"})

__all__ = ["app"]
