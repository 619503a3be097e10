"""Clients for interlink's jobs API: `JobsClient` (blocking) and `AsyncJobsClient` (asyncio).

```python
from interlink.client import JobsClient

with JobsClient("http://127.0.0.1:8000", api_key="il_...") as client:
    job = client.submit_job("customers", full_refresh=True)
    done = client.wait_for_job(job["job_id"], timeout=600)
```

Both are thin I/O shells over one sans-I/O core (`_core.py`): request building, retry
decisions, envelope parsing and error mapping are written once. See docs/client.md.
"""

from interlink.errors import JobNotFoundApiError

from ._async import AsyncJobsClient
from ._core import (
    API_PREFIX,
    IDEMPOTENCY_HEADER,
    TERMINAL_STATUSES,
    JobWaitTimeoutError,
    WaitPlan,
    api_base_url,
)
from ._pages import JobsPage
from ._sync import JobsClient

__all__ = [
    "API_PREFIX",
    "IDEMPOTENCY_HEADER",
    "TERMINAL_STATUSES",
    "AsyncJobsClient",
    "JobNotFoundApiError",
    "JobWaitTimeoutError",
    "JobsClient",
    "JobsPage",
    "WaitPlan",
    "api_base_url",
]
