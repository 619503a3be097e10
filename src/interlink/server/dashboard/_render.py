"""Pages: Jinja2 templates (`templates/`, autoescaped) rendered into answers that carry the
dashboard's own security headers.

```python
return page(request, "run.html", title=f"Run {run_id}", viewer=viewer, run=shown)
```

Every page is `no-store` (it shows live state and a session's CSRF token), framed
nowhere, and under `DASHBOARD_CSP`: scripts, styles and everything else from this server
only, no inline script or style, forms posted here only. Its referrer policy is
`same-origin`, so the dashboard's own POSTs carry the `Origin` its forms are checked
against (`_forms`) while nothing leaks to other sites.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ._static import static_url
from ._viewer import Viewer

__all__ = ["DASHBOARD_CSP", "NOTICES", "PAGE_HEADERS", "page", "pretty_json", "when"]

DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": DASHBOARD_CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
"""On every page; the security middleware keeps them and adds its own (nosniff, DENY)."""

NOTICES = {
    "enabled": "Switched on.",
    "disabled": "Switched off.",
    "replayed": "Queued again: a new job processes this delivery.",
    "resolved": "Resolved.",
    "signed-out": "You are signed out.",
}
"""What `?notice=` may say after an action (fixed texts: nothing from the URL is shown)."""

TEMPLATES = Path(__file__).with_name("templates")


def when(epoch: float | None) -> str:
    """An instant as the pages show it: `2026-03-29 10:00:05 UTC`, or an em dash."""
    if epoch is None:
        return "\u2014"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pretty_json(value: Any) -> str:
    """`value` as indented JSON (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",), default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals["static_url"] = static_url
_env.filters["when"] = when
_env.filters["iso"] = iso
_env.filters["pretty_json"] = pretty_json


def page(
    request: Request,
    template: str,
    *,
    title: str,
    viewer: Viewer | None,
    status: int = 200,
    nav: str | None = None,
    live_url: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render `template` into an HTML answer with `PAGE_HEADERS`. `nav` marks the current
    item of the navigation; `live_url` makes the page follow a job (static/dashboard.js)."""
    notice = NOTICES.get(request.query_params.get("notice", ""))
    body = _env.get_template(template).render(
        title=title,
        viewer=viewer,
        nav=nav,
        live_url=live_url,
        notice=notice,
        **context,
    )
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
