"""The HTTP API of `interlink serve`: jobs, pipelines, runs, apps and health under /api/v1.

```python
from interlink.server import EnvelopeHttpToolsProtocol, create_app, install_access_log_filter

app = create_app(config, worker=True)     # serve with uvicorn, as `interlink serve` does:
served = uvicorn.Config(app, http=EnvelopeHttpToolsProtocol, ws="none")
install_access_log_filter()               # after Config: secret query values masked
uvicorn.Server(served).run()
```

Both protocol classes answer the requests their parser refuses in the error envelope, with
the same statuses: `EnvelopeHttpToolsProtocol` on httptools (in C; imported when first
used, as it needs the httptools package), `EnvelopeH11Protocol` on h11 (pure Python).
"""

import typing

from ._accesslog import SecretQueryFilter, install_access_log_filter, mask_target
from ._protocol import EnvelopeH11Protocol
from .app import OPENAPI_URL, PUBLIC_PATHS, create_app

if typing.TYPE_CHECKING:
    from ._protocol_httptools import EnvelopeHttpToolsProtocol

__all__ = [
    "OPENAPI_URL",
    "PUBLIC_PATHS",
    "EnvelopeH11Protocol",
    "EnvelopeHttpToolsProtocol",
    "SecretQueryFilter",
    "create_app",
    "install_access_log_filter",
    "mask_target",
]


def __getattr__(name: str) -> typing.Any:
    if name != "EnvelopeHttpToolsProtocol":
        raise AttributeError(f"module 'interlink.server' has no attribute {name!r}")
    from ._protocol_httptools import EnvelopeHttpToolsProtocol

    globals()[name] = EnvelopeHttpToolsProtocol
    return EnvelopeHttpToolsProtocol
