"""The dashboard's own files (`static/`: one stylesheet, one script), served at /static/.

Pages name each file with its content's hash (`/static/dashboard.css?v=3f2a...`), so a
browser may keep a file for a year: a changed file has a new URL.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = [
    "STATIC_CACHE",
    "STATIC_DIR",
    "STATIC_PATH",
    "DashboardStatic",
    "icon_router",
    "static_url",
]

STATIC_DIR = Path(__file__).with_name("static")
STATIC_PATH = "/static"
STATIC_CACHE = "public, max-age=31536000, immutable"
"""Cache-Control of the files: their URLs change with their content."""


@cache
def static_url(name: str) -> str:
    """`/static/NAME?v=HASH` for a file of `static/`; ValueError for a name that is none of them."""
    path = STATIC_DIR / name
    if path.parent != STATIC_DIR or not path.is_file():
        raise ValueError(f"no file {name!r} in {STATIC_DIR}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{STATIC_PATH}/{name}?v={digest}"


class DashboardStatic(StaticFiles):
    """`StaticFiles` over `static/`, every answer cacheable (`STATIC_CACHE`)."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR)

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = STATIC_CACHE
        return response


icon_router = APIRouter(include_in_schema=False)


@icon_router.get("/favicon.ico")
def favicon() -> Response:
    """The icon browsers ask for by this name on pages that do not name one (the connect
    pages): the dashboard's own, an SVG."""
    return FileResponse(
        STATIC_DIR / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )
