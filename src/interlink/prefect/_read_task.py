"""`read_resource`: a Prefect task that reads up to `limit` records of a resource.

```python
records = read_resource("shop.customers", limit=500)
```

For a look at a source inside a flow (a check before a sync, a small lookup table), as
`interlink read` does: through the connection's auth, rate limit and retries, with the
vault's tokens when the project has a database. The read is always bounded: the records
are the task's result, held in memory and handed to the next task.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prefect.cache_policies import NO_CACHE

from interlink.config import OAuth2AuthConfig
from interlink.connectors import Catalog
from interlink.errors import ConfigError
from prefect import task

from ._logs import forward_logs, run_logger
from ._project import ConfigLike, Project, load_project, run_sync

__all__ = ["read_resource", "read_records"]


@task(name="interlink-read", retries=0, cache_policy=NO_CACHE, task_run_name="read {resource}")
def read_resource(
    resource: str,
    config: ConfigLike = "interlink.yaml",
    *,
    limit: int = 1000,
    since: str | None = None,
    log_level: int | str = logging.INFO,
) -> list[dict[str, Any]]:
    """The first `limit` records of `resource` (`connection.resource`, such as
    `shop.customers`); `since` reads only records changed since that incremental cursor.

    `limit` is required to be a positive number: the records are held in memory.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(
            f"limit: expected a positive number of records to read, got {limit!r} "
            "(the records are the task's result, held in memory)"
        )
    project = load_project(config)
    started = time.perf_counter()
    with forward_logs(project.redactor, level=log_level):
        records, pages, warnings = read_records(project, resource, limit=limit, since=since)
    logger = run_logger()
    for warning in warnings:
        logger.warning("%s: %s", resource, warning)
    logger.info(
        "%s: %s records in %s pages, %.2f s",
        resource,
        f"{len(records):,}",
        f"{pages:,}",
        time.perf_counter() - started,
    )
    return records


def read_records(
    project: Project, resource: str, *, limit: int, since: str | None = None
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """Read up to `limit` records of `resource`: (records, pages, warnings)."""
    config = project.config
    connection = config.connections.get(resource.partition(".")[0])
    oauth2 = connection is not None and isinstance(connection.auth, OAuth2AuthConfig)

    async def read(catalog: Catalog) -> tuple[list[dict[str, Any]], int, list[str]]:
        records: list[dict[str, Any]] = []
        warnings: list[str] = []
        pages = 0
        async with catalog as opened:
            async for page in opened.resource(resource).pages(limit=limit, since=since):
                pages += 1
                records.extend(page.records[: limit - len(records)])
                warnings.extend(page.warnings)
                if len(records) >= limit:
                    break
        return records, pages, warnings

    try:
        if oauth2 or project.database_exists():
            # The vault's tokens (a refresh an earlier run made is the one to use), and a
            # connection switched off is refused, as `interlink read` does.
            from interlink.oauth import open_catalog

            with project.store() as store:
                return run_sync(lambda: read(open_catalog(config, store)))
        return run_sync(lambda: read(Catalog(config)))
    except ConfigError as error:
        raise project.locate(error) from None
