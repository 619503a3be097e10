"""Fixtures for the metrics tests: configs with `metrics:`, tables in SQLite and PostgreSQL,
and the sandbox shop serving orders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.sandbox import SandboxServer, create_shop_app
from tests.jobs.procrastinate_schema import fresh_schema

SHOP_TOKEN = "metrics-shop-token"


def make_config(
    database: str,
    metrics: dict[str, Any],
    *,
    shop_url: str = "http://127.0.0.1:9",
    pipelines: dict[str, Any] | None = None,
) -> InterlinkConfig:
    """A config with the shop's orders (whole, and incremental by updated_at) and `metrics`."""
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "connections": {
                "shop": {"base_url": shop_url, "auth": {"type": "bearer", "token": SHOP_TOKEN}}
            },
            "resources": {
                "shop": {
                    "orders": {
                        "path": "/orders",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 500},
                    },
                    "orders_changed": {
                        "path": "/orders",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 500},
                        "incremental": {"field": "updated_at", "param": "updated_since"},
                    },
                }
            },
            "pipelines": pipelines or {},
            "metrics": metrics,
        }
    )


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'metrics.db'}"


@pytest.fixture
def pg_url(postgres_url) -> Iterator[str]:
    with fresh_schema(postgres_url, "test_metrics") as url:
        yield url


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    """The sandbox shop: 1,500 customers and their orders (2022 to 2024)."""
    with SandboxServer(create_shop_app(records=1500, token=SHOP_TOKEN)) as server:
        yield server


def create_table(url: str, name: str, columns: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """A table of `columns` (name -> SQLAlchemy type) holding `rows`."""
    from interlink.store import create_engine

    engine = create_engine(url)
    try:
        table = sa.Table(
            name, sa.MetaData(), *(sa.Column(column, kind) for column, kind in columns.items())
        )
        with engine.begin() as conn:
            table.drop(conn, checkfirst=True)
            table.create(conn)
            if rows:
                conn.execute(table.insert(), [{c: row.get(c) for c in columns} for row in rows])
    finally:
        engine.dispose()
