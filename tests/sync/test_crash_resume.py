"""A pipeline run killed with SIGKILL at any point resumes with nothing lost and nothing
written twice (RELIABILITY.md S1): a subprocess runs the pipeline and is killed mid-run
several times, then the target table is compared with the source by count and content."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interlink.sandbox import FaultConfig, SandboxServer, create_shop_app, make_customers

RECORDS = 12_000
SEED = 5
TOKEN = "crash-token"

CONFIG = """
database: sqlite:///{db}
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


def _count(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def _start(config: Path, pipeline: str, *, capture: bool = False) -> subprocess.Popen[bytes]:
    code = "from interlink.cli.main import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "run", pipeline, "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
    )


@pytest.mark.parametrize("pipeline", ["appended", "merged"])
def test_sigkill_mid_run_loses_nothing_and_writes_nothing_twice(tmp_path, pipeline):
    table = f"customers_{pipeline}"
    db = tmp_path / "state.db"
    # Slow, faulty answers keep the run long enough to be killed in the middle, and make
    # the retries part of what gets interrupted.
    faults = FaultConfig(slow_rate=0.5, slow_seconds=0.02, unavailable_rate=0.03, seed=3)
    app = create_shop_app(records=RECORDS, seed=SEED, token=TOKEN, faults=faults)
    with SandboxServer(app) as server:
        config = tmp_path / "interlink.yaml"
        config.write_text(CONFIG.format(db=db, url=server.url, token=TOKEN))
        kills = 0
        for threshold in (700, 3_100, 6_500, 9_900):
            process = _start(config, pipeline)
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                if _count(db, table) >= threshold:
                    os.kill(process.pid, signal.SIGKILL)
                    kills += 1
                    break
                time.sleep(0.005)
            process.wait(timeout=30)
        final = _start(config, pipeline, capture=True)
        _, stderr = final.communicate(timeout=120)
        assert final.returncode == 0, stderr.decode()[-2000:]

    assert kills >= 3, "the kills must land mid-run, or the test proves nothing"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
        statuses = [
            r[0]
            for r in conn.execute(
                "SELECT status FROM interlink_runs WHERE pipeline = ? ORDER BY id", (pipeline,)
            )
        ]
        resumed = conn.execute(
            "SELECT resumed FROM interlink_runs WHERE pipeline = ? ORDER BY id DESC LIMIT 1",
            (pipeline,),
        ).fetchone()[0]
    assert len(rows) == RECORDS, f"{len(rows)} rows for {RECORDS} records"
    assert len({row[columns.index("id")] for row in rows}) == RECORDS, "a record came twice"
    expected = make_customers(SEED, RECORDS)
    for row, source in zip(rows, expected, strict=True):
        record = dict(zip(columns, row, strict=True))
        record["address"] = json.loads(record["address"])
        record["tags"] = json.loads(record["tags"])
        assert record == source
    assert statuses.count("crashed") >= kills - 1  # the last kill's run is found by the next
    assert statuses[-1] == "succeeded" and resumed
