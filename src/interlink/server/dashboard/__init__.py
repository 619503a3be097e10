"""The dashboard of `interlink serve`: server-rendered pages at / for what interlink runs.

```python
app = create_app(config, worker=True)
mount_dashboard(app)      # / (overview), /login, /runs/{id}, /jobs/{id}, /metrics ...
```

Signed in with an API key (a session cookie; the key's scope decides which buttons show
and which POSTs are carried out), every form CSRF-checked, every page `no-store` under a
strict Content-Security-Policy. Templates (`templates/`), the stylesheet and the one
script (`static/`) ship in the package; nothing is loaded from elsewhere. docs/dashboard.md
is the user's view.
"""

from ._cookies import SESSION_COOKIE
from ._mount import DASHBOARD_ROUTERS, mount_dashboard
from ._render import DASHBOARD_CSP, PAGE_HEADERS
from ._static import STATIC_CACHE, STATIC_PATH

__all__ = [
    "DASHBOARD_CSP",
    "DASHBOARD_ROUTERS",
    "PAGE_HEADERS",
    "SESSION_COOKIE",
    "STATIC_CACHE",
    "STATIC_PATH",
    "mount_dashboard",
]
