"""A replace run killed with SIGKILL mid-read leaves the old table whole; the next run
resumes into its staging table, swaps it in and leaves no staging table behind (R7)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from interlink.sandbox import FaultConfig, SandboxServer, create_shop_app

RECORDS = 6_000
TOKEN = "replace-token"

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
      concurrency: 1
pipelines:
  replaced:
    source: shop.customers
    destination: {{sql: customers}}
    write: replace
"""


def _count(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def _run(config: Path, *, capture: bool = True) -> subprocess.Popen[bytes]:
    code = "from interlink.cli.main import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "run", "replaced", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
    )


def test_sigkill_mid_replace_keeps_the_old_table_and_the_next_run_swaps_cleanly(tmp_path):
    db = tmp_path / "state.db"
    faults = FaultConfig(slow_rate=0.5, slow_seconds=0.02, seed=4)
    app = create_shop_app(records=RECORDS, seed=5, token=TOKEN, faults=faults)
    with SandboxServer(app) as server:
        config = tmp_path / "interlink.yaml"
        config.write_text(CONFIG.format(db=db, url=server.url, token=TOKEN))
        first = _run(config)
        _, err = first.communicate(timeout=180)
        assert first.returncode == 0, err.decode()[-2000:]
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO customers (id, email) VALUES (999999, 'stale@example')")
        process = _run(config, capture=False)
        killed = False
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if _count(db, "interlink_stage_customers") >= 1_500:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.005)
        process.wait(timeout=30)
        assert killed, "the kill must land mid-read, or the test proves nothing"
        # Readers still see the whole old table, the stale row included.
        assert _count(db, "customers") == RECORDS + 1
        assert 1_500 <= _count(db, "interlink_stage_customers") < RECORDS
        final = _run(config)
        _, err = final.communicate(timeout=180)
        assert final.returncode == 0, err.decode()[-2000:]
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM customers ORDER BY id")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        last = conn.execute(
            "SELECT status, resumed FROM interlink_runs WHERE pipeline = 'replaced' "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert len(ids) == RECORDS and len(set(ids)) == RECORDS and 999999 not in ids
    assert "interlink_stage_customers" not in tables
    assert last == ("succeeded", 1), "the last run resumed the killed read"
