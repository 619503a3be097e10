"""How `interlink serve --processes N`'s supervisor (cli/_processes.py) reports a stop that
did not go cleanly: its exit code says so, not 0."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork and PR_SET_PDEATHSIG")

_SCRIPT = """
import os, signal, sys, time
from interlink.cli._processes import Supervisor

def serve(index):
    {serve}

code = Supervisor(2, serve, report=lambda line: print(line, file=sys.stderr, flush=True),
                  grace={grace}, poll=0.02).run()
print("exit", code, file=sys.stderr, flush=True)
sys.exit(code)
"""


def _supervise(tmp_path: Path, serve: str, grace: float = 1.0) -> subprocess.CompletedProcess[str]:
    """Start the supervisor with `serve` as each child's body, SIGTERM it once both
    children run, and wait for it."""
    script = tmp_path / "supervise.py"
    ready = tmp_path / "ready"
    ready.mkdir()
    body = f"open({str(ready)!r} + f'/{{index}}', 'w').close()\n    " + serve
    script.write_text(textwrap.dedent(_SCRIPT).format(serve=body, grace=grace))
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while len(list(ready.iterdir())) < 2:
        assert time.monotonic() < deadline and process.poll() is None, process.stderr
        time.sleep(0.02)
    time.sleep(0.2)  # the children's own handlers are in place
    process.terminate()
    out, err = process.communicate(timeout=20)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_clean_stop_exits_0(tmp_path: Path) -> None:
    done = _supervise(
        tmp_path,
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n    time.sleep(60)",
    )
    assert done.returncode == 0, done.stderr


def test_a_child_killed_after_the_grace_period_makes_the_exit_code_1(tmp_path: Path) -> None:
    done = _supervise(
        tmp_path,
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    time.sleep(60)",
    )
    assert "did not stop; killed" in done.stderr
    assert done.returncode == 1, done.stderr


def test_a_child_that_fails_while_stopping_makes_the_exit_code_1(tmp_path: Path) -> None:
    done = _supervise(
        tmp_path,
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3) if index else sys.exit(0))\n"
        "    time.sleep(60)",
    )
    assert "server process 1 exited with code 3 while stopping" in done.stderr
    assert done.returncode == 1, done.stderr


def test_a_dead_output_pipe_does_not_stop_the_supervisor(tmp_path: Path) -> None:
    """The supervisor's stdout and stderr are a pipe whose reader went away (`serve | tee`
    with tee gone, journald restarted: writes fail with EPIPE). A child that dies must still
    be started again: a report line that cannot be written must not end the supervisor,
    whose death would stop every child (PR_SET_PDEATHSIG)."""
    import os
    import signal

    import psutil

    script = tmp_path / "supervise.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from interlink.cli._processes import Supervisor

            def serve(index):
                time.sleep(60)

            def report(line):
                print(line, file=sys.stderr, flush=True)

            sys.exit(Supervisor(2, serve, report=report, poll=0.02).run())
            """
        )
    )
    read, write = os.pipe()
    process = subprocess.Popen([sys.executable, str(script)], stdout=write, stderr=write)
    os.close(write)
    try:
        deadline = time.monotonic() + 20
        while len(psutil.Process(process.pid).children()) < 2:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        os.close(read)  # the reader goes away
        read = -1
        victim = psutil.Process(process.pid).children()[0]
        os.kill(victim.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"the supervisor exited with {process.returncode}"
            pids = {c.pid for c in psutil.Process(process.pid).children()}
            if len(pids) == 2 and victim.pid not in pids:
                break
            assert time.monotonic() < deadline, "the killed child was not started again"
            time.sleep(0.05)
        process.terminate()
        assert process.wait(20) == 0
    finally:
        if read >= 0:
            os.close(read)
        if process.poll() is None:
            for child in psutil.Process(process.pid).children():
                child.kill()
            process.kill()
            process.wait(10)
