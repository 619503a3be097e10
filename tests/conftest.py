from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of the PostgreSQL server .ci/run starts; in CI its absence is a failure."""
    url = os.environ.get("INTERLINK_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must export INTERLINK_TEST_POSTGRES_URL (see .ci/run)")
        pytest.skip("INTERLINK_TEST_POSTGRES_URL is not set; .ci/run starts PostgreSQL")
    return url
