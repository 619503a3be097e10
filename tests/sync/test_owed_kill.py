"""Records that fail are owed in the transaction of their batch (RELIABILITY.md S1): an
`interlink run` killed with SIGKILL at any point leaves every failed record of a committed
batch owed and none of a batch that did not commit, and the run after the cause is fixed
leaves the table equal to the source with nothing owed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from interlink.sandbox import SandboxServer

from .fake_source import FakeSource, project_yaml

COUNT = 3_000
FAILING = (5, 777, 1_500, 2_222, 2_999)


def _start(
    config: Path, failing: tuple[int, ...], *, capture: bool = False
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INTERLINK_TEST_FAILING": ",".join(map(str, failing))}
    env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")])
    code = "from interlink.cli.main import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "run", "items", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
        env=env,
    )


def _books(db: Path) -> tuple[set[int], set[str]]:
    """The ids in the table and the keys owed, read together."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            ids = {row[0] for row in conn.execute("SELECT id FROM items")}
            owed = {row[0] for row in conn.execute("SELECT record_key FROM interlink_outstanding")}
            return ids, owed
    except sqlite3.Error:
        return set(), set()


def test_sigkill_never_loses_a_failed_record(tmp_path):
    db = tmp_path / "state.db"
    fake = FakeSource(COUNT)
    fake.delay = 0.01  # long enough a run to be killed in the middle of it
    with SandboxServer(fake.app()) as server:
        config = tmp_path / "interlink.yaml"
        config.write_text(
            project_yaml(db, server.url, page_size=100, name_call="name_unless_listed")
        )
        kills = 0
        for threshold in (400, 1_600, 2_300):
            process = _start(config, FAILING)
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                if len(_books(db)[0]) >= threshold:
                    os.kill(process.pid, signal.SIGKILL)
                    kills += 1
                    break
                time.sleep(0.005)
            process.wait(timeout=30)
            ids, owed = _books(db)
            # Every failing record a committed batch covered is owed; nothing else is.
            covered = {n for n in FAILING if n <= max(ids, default=0)}
            assert owed == {str(n) for n in covered}, (threshold, sorted(owed))
        assert kills >= 2, "the kills must land mid-run, or the test proves nothing"
        failing = _start(config, FAILING, capture=True)
        _, stderr = failing.communicate(timeout=120)
        assert failing.returncode == 1, stderr.decode()[-2000:]
        assert _books(db)[1] == {str(n) for n in FAILING}
        fake.delay = 0.0
        fake.item_requests = 0
        fixed = _start(config, (), capture=True)
        _, stderr = fixed.communicate(timeout=120)
        assert fixed.returncode == 0, stderr.decode()[-2000:]
        assert fake.item_requests == len(FAILING)  # each fetched again by id, once
    ids, owed = _books(db)
    assert ids == set(range(1, COUNT + 1)) and owed == set()
