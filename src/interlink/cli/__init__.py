"""The `interlink` command line: `app` is the Typer application, `main` its entry point."""

from __future__ import annotations

from interlink.cli.main import app, main

__all__ = ["app", "main"]
