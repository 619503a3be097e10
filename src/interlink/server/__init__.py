"""The HTTP API of `interlink serve`: jobs, pipelines, runs, apps and health under /api/v1.

```python
from interlink.server import EnvelopeH11Protocol, create_app, install_access_log_filter

app = create_app(config, worker=True)     # serve with uvicorn, as `interlink serve` does:
served = uvicorn.Config(app, http=EnvelopeH11Protocol, ws="none")  # parser errors as envelopes
install_access_log_filter()               # after Config: secret query values masked
uvicorn.Server(served).run()
```
"""

from ._accesslog import SecretQueryFilter, install_access_log_filter, mask_target
from ._protocol import EnvelopeH11Protocol
from .app import OPENAPI_URL, PUBLIC_PATHS, create_app

__all__ = [
    "OPENAPI_URL",
    "PUBLIC_PATHS",
    "EnvelopeH11Protocol",
    "SecretQueryFilter",
    "create_app",
    "install_access_log_filter",
    "mask_target",
]
