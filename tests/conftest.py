from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of the PostgreSQL server .ci/run starts; in CI its absence is a failure.

    Under pytest-xdist each worker gets a database of its own on that server (created
    fresh, dropped at the end), so tests that use the public schema or a fixed table name
    never meet a test of another worker."""
    url = os.environ.get("INTERLINK_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must export INTERLINK_TEST_POSTGRES_URL (see .ci/run)")
        pytest.skip("INTERLINK_TEST_POSTGRES_URL is not set; .ci/run starts PostgreSQL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        yield url
        return
    import psycopg

    parts = urlsplit(url)
    database = f"{parts.path.lstrip('/') or 'postgres'}_{worker}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    yield urlunsplit(parts._replace(path=f"/{database}"))
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
