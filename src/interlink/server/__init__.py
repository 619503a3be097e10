"""The HTTP API of `interlink serve`: jobs, pipelines, runs, apps and health under /api/v1.

```python
from interlink.server import create_app

app = create_app(config, worker=True)     # serve with uvicorn
```
"""

from .app import OPENAPI_URL, PUBLIC_PATHS, create_app

__all__ = ["OPENAPI_URL", "PUBLIC_PATHS", "create_app"]
