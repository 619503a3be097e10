"""Ctrl-C during `interlink run`: a real process, a real SIGINT, a slow local shop.

The run must be recorded `cancelled` with the reason (never `failed`, never without one),
`interlink runs` must show it, and the exit code is 130 (143 for SIGTERM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.store import Store
from tests.slow_shop import TOKEN, slow_shop

CONFIG = """\
database: sqlite:///{db}
connections:
  shop:
    base_url: {url}
    auth: {{type: bearer, token: "{token}"}}
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 20}}
pipelines:
  customers:
    source: shop.customers
    destination: sql:customers
    write: merge
"""


def _write(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "interlink.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "state.db", url=url, token=TOKEN))
    return path


ENTRIES = {
    # The console script reads a plain `run` line itself (interlink.cli._direct) ...
    "console script": "from interlink.__main__ import main; main()",
    # ... and the Typer app runs the same command for every other form of it.
    "typer app": "from interlink.cli.main import main; main()",
}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize(
    ("sig", "code", "reason"),
    [
        (signal.SIGINT, 130, "interrupted by Ctrl-C (SIGINT)"),
        (signal.SIGTERM, 143, "stopped by SIGTERM"),
    ],
)
def test_ctrl_c_records_the_run_cancelled_with_its_reason(
    tmp_path: Path, sig: signal.Signals, code: int, reason: str, entry: str
) -> None:
    with slow_shop(records=3000) as shop:
        config = _write(tmp_path, shop.url)
        process = subprocess.Popen(
            [sys.executable, "-c", ENTRIES[entry]] + ["run", "customers", "-c", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "80"},
        )
        try:
            store = None
            deadline = time.monotonic() + 30
            # Wait until the run has written some pages, so the interrupt lands mid-run.
            while time.monotonic() < deadline:
                time.sleep(0.1)
                assert process.poll() is None, process.communicate()
                if not (tmp_path / "state.db").exists():
                    continue
                store = store or Store.open(f"sqlite:///{tmp_path / 'state.db'}")
                runs = store.runs("customers")
                if runs and runs[0]["read"] >= 40:
                    break
            else:
                pytest.fail("the run never got going")
            process.send_signal(sig)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert store is not None
        run = store.runs("customers")[0]
        store.close()
    assert process.returncode == code, (out, err)
    assert run["status"] == "cancelled", run
    assert run["message"] == reason, run
    assert 40 <= run["read"] < 3000
    assert f"cancelled, {reason}" in " ".join(err.split()), err
    assert "Traceback" not in err

    listed = CliRunner().invoke(app, ["runs", "-c", str(config)], env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    assert f"run {run['id']} cancelled: {reason}" in listed.stdout
