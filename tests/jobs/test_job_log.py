"""`interlink worker` logs one line per job started and finished (id, pipeline, counts,
duration) and each retry's wait, without `-v`: a real SQLite queue, a real sandbox shop,
and a pipeline whose API is down."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli._logging import configure_logging
from interlink.cli.main import app
from interlink.config import load_config
from interlink.jobs import open_queue, pipeline_job
from interlink.sandbox import SandboxServer, create_shop_app
from interlink.store import Store

TOKEN = "job-log-token-0001"

CONFIG = """
database: sqlite:///{db}
jobs: {{poll_interval: 50ms, retry_delay: 50ms, retry_max_delay: 50ms, max_attempts: 2}}
connections:
  shop:
    base_url: {url}
    auth: {{type: bearer, token: {token}}}
  down:
    base_url: http://127.0.0.1:9
    retry: {{max_attempts: 1}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 20}}
  down:
    things:
      path: /things
pipelines:
  customers:
    source: shop.customers
    destination: sql:customers
  things:
    source: down.things
    destination: sql:things
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    with SandboxServer(create_shop_app(records=45, token=TOKEN)) as server:
        path = tmp_path / "interlink.yaml"
        path.write_text(CONFIG.format(db=tmp_path / "state.db", url=server.url, token=TOKEN))
        yield path
    configure_logging(0, None, None)


def _enqueue(path: Path, *pipelines: str) -> list[int]:
    config = load_config(path)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        return [queue.enqueue(pipeline_job(name)).id for name in pipelines]
    finally:
        queue.close()
        store.close()


def _burst(project: Path) -> str:
    result = CliRunner().invoke(
        app, ["worker", "-c", str(project), "--burst", "--no-schedules"], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    return result.stderr


def test_the_worker_logs_each_job_started_finished_and_retried(project: Path) -> None:
    good, bad = _enqueue(project, "customers", "things")
    err = _burst(project)
    assert re.search(rf"job {good} started: pipeline customers, attempt 1 of 2", err), err
    assert re.search(
        rf"job {good} completed in [\d.]+ s: pipeline customers, run \d+: 45 read, 45 created",
        err,
    ), err
    assert re.search(
        rf"job {bad} attempt 1 failed, retrying in [\d.]+s: TransportError: .*"
        r"cannot connect to 127\.0\.0\.1:9: connection refused; check connections.down.base_url",
        err,
    ), err
    assert re.search(
        rf"job {bad} attempt 1 of 2 ended in [\d.]+ s: pipeline things; next attempt in [\d.]+ s",
        err,
    ), err
    time.sleep(0.1)  # the retry's wait (at most 50 ms)
    err = _burst(project)
    assert re.search(rf"job {bad} started: pipeline things, attempt 2 of 2", err), err
    assert re.search(rf"job {bad} failed in [\d.]+ s: pipeline things: .*gave up after 2", err), err


def test_log_level_warning_keeps_only_the_failures(project: Path) -> None:
    _enqueue(project, "customers")
    result = CliRunner().invoke(
        app, ["worker", "-c", str(project), "--burst", "--log-level", "warning"]
    )
    assert result.exit_code == 0, result.output
    assert "started: pipeline customers" not in result.stderr


@pytest.mark.postgres
def test_the_procrastinate_worker_logs_the_same_lines(postgres_url: str, tmp_path: Path) -> None:
    from tests.jobs.procrastinate_schema import fresh_schema

    with (
        fresh_schema(postgres_url, "test_joblog") as url,
        SandboxServer(create_shop_app(records=45, token=TOKEN)) as server,
    ):
        project = tmp_path / "interlink.yaml"
        text = CONFIG.format(db="", url=server.url, token=TOKEN)
        project.write_text(text.replace("database: sqlite:///", f"database: {url}"))
        try:
            good, bad = _enqueue(project, "customers", "things")
            err = _burst(project)
        finally:
            configure_logging(0, None, None)
    assert re.search(rf"job {good} started: pipeline customers, attempt 1 of 2", err), err
    assert re.search(
        rf"job {good} completed in [\d.]+ s: pipeline customers, run \d+: 45 read, 45 created",
        err,
    ), err
    assert re.search(
        rf"job {bad} attempt 1 of 2 ended in [\d.]+ s: pipeline things; next attempt in", err
    ), err
