"""The services CI provides are there and usable (later layers build on them)."""

from __future__ import annotations

import pytest

from interlink.config import parse_config


@pytest.mark.postgres
def test_postgres_is_reachable_and_accepted_as_the_database(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        version = conn.execute("show server_version_num").fetchone()
    assert version is not None and int(version[0]) >= 130000
    config = parse_config(f"database: {postgres_url}\n", file="interlink.yaml")
    assert config.database.backend == "postgresql"
