"""Smoke runs of benchmarks/webhooks.py: its quickest mode, against servers that do not need
interlink's route, so that the harness itself (servers started and stopped, distinct signed
deliveries, counts, latencies, the check for lost deliveries) is known to work."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "webhooks.py"


def _bench(*args: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.stdout.strip(), done.stderr[-2000:]
    return done.returncode, json.loads(done.stdout), elapsed


def _check_bare(summary: dict[str, Any], elapsed: float) -> None:
    assert elapsed < 20
    assert summary["seconds"] == 2 and summary["connections"] == 16
    (row,) = summary["results"]
    assert row["kind"] == "bare" and row["errors_in_rounds"] == []
    # Every answer was a 200, and there were many of them.
    assert row["statuses"].get("200") == row["accepted"] == row["requests"] > 100
    assert 1.8 < row["duration_s"] < 3.0
    assert row["rate"] == pytest.approx(row["accepted"] / row["duration_s"])
    assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["x_bare"] == pytest.approx(1.0)
    assert 0 < row["startup_s"] < 15 and row["peak_mib"] > 5
    assert row["server_cpu_pct"] > 1 and row["stored"] is None


def test_bare_endpoint_with_the_python_generator() -> None:
    code, summary, elapsed = _bench("--targets", "bare", "--generator", "python")
    assert code == 0
    assert summary["generator"].startswith("asyncio")
    _check_bare(summary, elapsed)


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_bare_endpoint_with_wrk() -> None:
    code, summary, elapsed = _bench("--targets", "bare", "--generator", "wrk")
    assert code == 0
    assert summary["generator"].startswith("wrk ")
    _check_bare(summary, elapsed)


def test_every_delivery_answered_202_is_counted_stored() -> None:
    code, summary, _ = _bench("--targets", "hand-built", "--generator", "python")
    (row,) = summary["results"]
    assert code == 0, row["errors_in_rounds"]
    assert row["statuses"] == {"202": row["accepted"]} and row["accepted"] > 100
    assert row["stored"] == row["accepted"] + 1  # and the probe
    assert row["lost"] == 0 and row["in_flight"] == 0


def test_an_acknowledged_delivery_that_was_not_stored_fails_the_run() -> None:
    # The hand-built receiver answers 202 without storing every 50th delivery: the run
    # must count them as lost and exit 1. The Python generator has nothing in flight at
    # the stop, so the count is exact.
    args = ("--targets", "hand-built", "--generator", "python")
    code, summary, _ = _bench(*args, "--fault-drop-every", "50")
    (row,) = summary["results"]
    assert code == 1
    assert row["accepted"] > 100
    # The probe is the first delivery; every 50th of accepted + 1 was dropped.
    assert row["lost"] == (row["accepted"] + 1) // 50 > 0
    assert row["stored"] == row["accepted"] + 1 - row["lost"]
    assert row["errors_in_rounds"] == [f"{row['lost']} deliveries answered 202 are not stored"]
