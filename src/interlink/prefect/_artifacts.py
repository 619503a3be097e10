"""Run counts as Prefect table artifacts: one row per pipeline (or per account).

```python
publish_counts([counts], key=artifact_key("customers"), description="...")
```

The key is stable per pipeline (`interlink-customers`), so Prefect's Artifacts page keeps
each pipeline's history of counts across runs; outside a flow or task run nothing is
published.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from prefect.artifacts import create_table_artifact
from prefect.context import FlowRunContext, TaskRunContext

from ._counts import RunCounts

__all__ = ["artifact_key", "publish_counts"]

_NOT_KEY = re.compile(r"[^a-z0-9-]+")


def artifact_key(*parts: str) -> str:
    """`interlink-<parts>` in the characters Prefect allows in a key (lower-case letters,
    digits and dashes): `artifact_key("Orders_EU")` is `interlink-orders-eu`."""
    words = [_NOT_KEY.sub("-", part.lower()).strip("-") for part in parts]
    return "-".join(["interlink", *(word for word in words if word)])


def publish_counts(runs: Iterable[RunCounts], *, key: str, description: str) -> UUID | None:
    """Publish the runs' counts as a table artifact of the current run; None outside one."""
    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return None
    rows = [row for run in runs for row in run.rows()]
    # `_sync=True`: a task called from an async flow runs where a loop is running, and
    # Prefect would otherwise hand back a coroutine nobody awaits.
    created: Any = create_table_artifact(table=rows, key=key, description=description, _sync=True)  # type: ignore[call-arg]
    return created if isinstance(created, UUID) else None
