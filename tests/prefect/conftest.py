"""A real temporary Prefect server for the whole session (Prefect's own test harness), the
sandbox's shop and commerce APIs, and interlink projects on SQLite files.

The harness starts a Prefect API server in a subprocess on a temporary SQLite database;
it is session-scoped so the suite pays its start-up (several seconds) once.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Before Prefect reads its settings: no analytics sent from the test server, and Prefect's
# home (profiles, local storage) in a directory of the test run's own.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="interlink-prefect-home-"))

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterTaskRunId,
)
from prefect.logging.handlers import APILogHandler
from prefect.testing.utilities import prefect_test_harness

from interlink.sandbox import SandboxServer, create_sandbox_app

HARNESS_STARTUP: dict[str, float] = {}


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    started = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=120):
        HARNESS_STARTUP["seconds"] = time.perf_counter() - started
        yield


@pytest.fixture(scope="module", autouse=True)
def collect_prefects_sockets() -> Iterator[None]:
    """Collect, at the end of each module here, the sockets Prefect's own API client leaves
    to the garbage collector (`prefect.results` reads the server's default result storage
    with a sync client it never closes): left to a later collection, their ResourceWarning
    was raised in whichever test ran then, outside this folder (seen in
    tests/sandbox/test_boundary.py, two full runs in three)."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def sandbox() -> Iterator[str]:
    """The sandbox suite (shop with 120 customers, commerce behind OAuth2) at its URL."""
    with SandboxServer(create_sandbox_app(records=120, commerce_records=0)) as server:
        yield server.url


@pytest.fixture
def project(tmp_path, monkeypatch, sandbox) -> Path:
    """An interlink project against the sandbox, on an SQLite file of the test's own:
    customers (shop -> commerce, OAuth2 client credentials), orders and a customer list
    (shop -> SQLite), invoices (after orders)."""
    monkeypatch.setenv("SANDBOX_URL", sandbox)
    monkeypatch.setenv("SHOP_TOKEN", "sandbox-token")
    monkeypatch.setenv("COMMERCE_CLIENT_SECRET", "commerce-secret")
    path = tmp_path / "interlink.yaml"
    path.write_text(PROJECT.format(database=f"sqlite:///{tmp_path / 'interlink.db'}"))
    return path


PROJECT = """\
database: {database}
connections:
  shop:
    base_url: ${{SANDBOX_URL}}/shop
    auth: {{type: bearer, token: "${{SHOP_TOKEN}}"}}
    retry: {{max_attempts: 3, base: 10ms, cap: 50ms}}
  commerce:
    base_url: ${{SANDBOX_URL}}/commerce
    auth:
      type: oauth2_client_credentials
      token_url: oauth2-token
      client_id: commerce-client
      client_secret: ${{COMMERCE_CLIENT_SECRET}}
      auth_method: client_secret_post
    retry: {{max_attempts: 3, base: 10ms, cap: 50ms}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 50}}
    orders:
      path: /orders
      records: data
      paginate: {{type: offset, page_size: 100}}
    missing:
      path: /no-such-list
      records: data
  commerce:
    customers:
      path: /api/customers
      format: jsonapi
      paginate: {{type: next_url, next_path: links.next}}
pipelines:
  customers:
    source: shop.customers
    destination: commerce.customers
    fields:
      email: email
      first_name: first_name
      last_name: last_name
      external_id: "shop-{{id}}"
    match: email
  customer_list:
    source: shop.customers
    destination: {{sql: customer_list}}
  orders:
    source: shop.orders
    destination: {{sql: orders}}
  broken:
    source: shop.missing
    destination: {{sql: broken}}
  after_broken:
    source: shop.customers
    destination: {{sql: after_broken}}
"""


# -- reading back what Prefect stored -------------------------------------------------------


def flush_logs() -> None:
    APILogHandler().flush()


def task_run_logs(task_run_id: Any) -> list[str]:
    """The logs Prefect's API holds for one task run, oldest first, as `logger: message`."""
    flush_logs()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[task_run_id]))
        )
    return [f"{log.name}: {log.message}" for log in sorted(logs, key=lambda log: log.timestamp)]


def flow_run_artifacts(flow_run_id: Any) -> dict[str, Any]:
    """The table artifacts of one flow run, by key: their rows."""
    import json

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    found: dict[str, Any] = {}
    for artifact in artifacts:
        data = artifact.data
        found[str(artifact.key)] = json.loads(data) if isinstance(data, str) else data
    return found


def commerce_customers(sandbox: str) -> list[dict[str, Any]]:
    token = httpx.post(
        f"{sandbox}/commerce/oauth2-token",
        data={
            "grant_type": "client_credentials",
            "client_id": "commerce-client",
            "client_secret": "commerce-secret",
        },
    ).json()["access_token"]
    people: list[dict[str, Any]] = []
    url: str | None = f"{sandbox}/commerce/api/customers?page[size]=100"
    while url:
        body = httpx.get(url, headers={"Authorization": f"Bearer {token}"}).json()
        people.extend(body["data"])
        url = body.get("links", {}).get("next")
    return people


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Prefect's own API client leaves a socket to the harness server for the garbage
    collector (seen in whichever test the collection runs in, any of these): its
    ResourceWarning is Prefect's, not the code under test's."""
    leak = pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    )
    for item in items:
        if "tests/prefect/" in str(item.path).replace("\\", "/"):
            item.add_marker(leak)
