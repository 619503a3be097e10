from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import pytest


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of the PostgreSQL server .ci/run starts; in CI its absence is a failure.

    Under pytest-xdist each worker gets a database of its own on that server (created
    fresh, dropped at the end; PostgreSQL 13 or later), named for the server's database,
    the worker and the test run, so tests that use the public schema or a fixed table
    name never meet a test of another worker, nor of another run of the suite."""
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
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    parts = urlsplit(url)
    if "dbname=" in parts.query:
        pytest.fail(
            "INTERLINK_TEST_POSTGRES_URL: name the database in the URL's path, not in "
            "?dbname= (each test process connects to a database of its own beside it)"
        )
    server_database = str(conninfo_to_dict(url).get("dbname") or "postgres")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8]
    database = f"{server_database}_{worker}_{run}"
    name = sql.Identifier(database)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    yield urlunsplit(parts._replace(path="/" + quote(database, safe="")))
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
