"""A sandbox shop whose every page is a little slow, and an interlink config with one
`customers` pipeline reading it: runs last long enough to be cancelled or stopped."""

from __future__ import annotations

from typing import Any

from interlink.config import InterlinkConfig
from interlink.sandbox import FaultConfig, SandboxServer, create_shop_app

TOKEN = "slow-shop-token"


def slow_shop(records: int) -> SandboxServer:
    """The shop served on a free local port (use as a context manager)."""
    faults = FaultConfig(slow_rate=1.0, slow_seconds=0.03, seed=3)
    return SandboxServer(create_shop_app(records=records, seed=4, token=TOKEN, faults=faults))


def customers_config(database: str, shop_url: str, **settings: Any) -> InterlinkConfig:
    """`customers`: the shop's customers merged into the SQL table `customers`, 50 a page;
    `settings` adds top-level sections (`server`, ...) and replaces `jobs`."""
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "jobs": {"retry_delay": 0.05, "poll_interval": 0.05},
            "connections": {
                "shop": {"base_url": shop_url, "auth": {"type": "bearer", "token": TOKEN}}
            },
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 50},
                    }
                }
            },
            "pipelines": {
                "customers": {
                    "source": "shop.customers",
                    "destination": {"sql": "customers"},
                    "write": "merge",
                    "fields": "all",
                }
            },
            **settings,
        }
    )
