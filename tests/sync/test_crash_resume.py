"""A pipeline run killed with SIGKILL at any point resumes with nothing lost and nothing
written twice (RELIABILITY.md S1): a subprocess runs the pipeline and is killed mid-run
several times, then the target table is compared with the source by count and content.
On SQLite and on PostgreSQL (the scale-out set-up, where the batch, the checkpoint and the
counters commit through psycopg)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.sandbox import FaultConfig, SandboxServer, create_shop_app, make_customers
from tests.jobs.procrastinate_schema import fresh_schema

RECORDS = 12_000
SEED = 5
TOKEN = "crash-token"

CONFIG = """
database: "{database}"
connections:
  shop:
    base_url: {url}
    auth: {{type: bearer, token: {token}}}
    retry: {{max_attempts: 8, base: 10ms, cap: 100ms}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 100}}
      concurrency: 2
      incremental: {{field: updated_at, param: updated_since}}
pipelines:
  appended:
    source: shop.customers
    destination: {{sql: customers_appended}}
    write: append
  merged:
    source: shop.customers
    destination: {{sql: customers_merged}}
    write: merge
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "crash") as url:
        yield url


def _count(engine: sa.Engine, table: str) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    except sa.exc.SQLAlchemyError:
        return 0


def _engine(database: str) -> sa.Engine:
    if database.startswith("sqlite:///"):
        path = database.removeprefix("sqlite:///")
        return sa.create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1),
        )
    return sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))


def _plain(value: Any) -> Any:
    """A JSON column's value as the source gave it (SQLite keeps the text)."""
    return json.loads(value) if isinstance(value, str) else value


def _start(config: Path, pipeline: str, *, capture: bool = False) -> subprocess.Popen[bytes]:
    code = "from interlink.cli.main import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "run", pipeline, "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
    )


@pytest.mark.parametrize("pipeline", ["appended", "merged"])
def test_sigkill_mid_run_loses_nothing_and_writes_nothing_twice(tmp_path, pipeline, database):
    table = f"customers_{pipeline}"
    engine = _engine(database)
    # Slow, faulty answers keep the run long enough to be killed in the middle, and make
    # the retries part of what gets interrupted.
    faults = FaultConfig(slow_rate=0.5, slow_seconds=0.02, unavailable_rate=0.03, seed=3)
    app = create_shop_app(records=RECORDS, seed=SEED, token=TOKEN, faults=faults)
    with SandboxServer(app) as server:
        config = tmp_path / "interlink.yaml"
        config.write_text(CONFIG.format(database=database, url=server.url, token=TOKEN))
        kills = 0
        for threshold in (700, 3_100, 6_500, 9_900):
            process = _start(config, pipeline)
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                if _count(engine, table) >= threshold:
                    os.kill(process.pid, signal.SIGKILL)
                    kills += 1
                    break
                time.sleep(0.005)
            process.wait(timeout=30)
        final = _start(config, pipeline, capture=True)
        _, stderr = final.communicate(timeout=120)
        assert final.returncode == 0, stderr.decode()[-2000:]

    assert kills >= 3, "the kills must land mid-run, or the test proves nothing"
    with engine.connect() as conn:
        result = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
        columns = list(result.keys())
        rows = result.fetchall()
        runs = sa.text("SELECT status, resumed FROM interlink_runs WHERE pipeline = :p ORDER BY id")
        found = conn.execute(runs, {"p": pipeline}).fetchall()
    engine.dispose()
    statuses = [status for status, _ in found]
    resumed = found[-1][1]
    assert len(rows) == RECORDS, f"{len(rows)} rows for {RECORDS} records"
    assert len({row[columns.index("id")] for row in rows}) == RECORDS, "a record came twice"
    expected = make_customers(SEED, RECORDS)
    for row, source in zip(rows, expected, strict=True):
        record = dict(zip(columns, row, strict=True))
        record["address"] = _plain(record["address"])
        record["tags"] = _plain(record["tags"])
        assert record == source
    assert statuses.count("crashed") >= kills - 1  # the last kill's run is found by the next
    assert statuses[-1] == "succeeded" and resumed
