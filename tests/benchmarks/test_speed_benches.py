"""Smoke runs of benchmarks/startup.py and benchmarks/pg_load.py at their smallest, so that
the harnesses themselves (server, processes measured by GNU time, row counts checked,
ratios printed) are known to work. Whether a target is met is the benchmark's verdict on a
quiet machine, not this test's: exit code 1 (a target missed) is accepted, a crash is not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from _process import run_measured  # noqa: E402


def _bench(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_a_child_peak_is_its_own_not_its_parents(tmp_path: Path) -> None:
    """The parent holds 200 MiB; `python -c pass` must not report it as its own peak."""
    ballast = bytearray(200 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page
    measured = run_measured([sys.executable, "-c", "pass"], cwd=tmp_path)
    assert measured.code == 0 and measured.rss_exact
    assert measured.peak_mib < 100, measured
    grow = "b = bytearray(150 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    big = run_measured([sys.executable, "-c", grow], cwd=tmp_path)
    assert big.peak_mib > 150, big
    del ballast


def test_startup_prints_the_ratio_of_an_incremental_run_to_the_bare_script() -> None:
    out = _bench("startup.py", "--rounds", "1", "--records", "50")
    lines = out.splitlines()
    assert any(line.startswith("interlink run ") for line in lines), out
    assert any(line.startswith("bare script ") for line in lines), out
    assert "interlink run / bare script:" in out and "target <= 2.0x" in out


@pytest.mark.postgres
def test_pg_load_loads_every_record_for_each_contender(postgres_url: str) -> None:
    out = _bench("pg_load.py", "--records", "2000", "--rounds", "1", "--url", postgres_url)
    for name in ("interlink append", "interlink merge", "script copy", "script copy merge"):
        assert any(line.startswith(name + " ") for line in out.splitlines()), out
    assert "interlink append vs script copy:" in out
    assert "interlink merge vs script copy merge:" in out
