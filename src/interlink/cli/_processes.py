"""`interlink serve --processes N`: N server processes on one listening socket, supervised.

One Python process answers on one core (the GIL); webhook ingest and the API are CPU-bound
in the server, so a machine with more cores serves more with more processes. The parent
binds the socket, forks the children (each builds its own app, store and inbox after the
fork, so nothing with a thread or a database connection crosses it) and supervises them;
the kernel spreads the connections among the children that accept on the shared socket.

```
parent (binds, forks, waits)
 |- child 0: uvicorn + app (+ the job worker and scheduler, unless --no-worker)
 |- child 1: uvicorn + app (serves only)
 `- ...
```

- Ctrl-C or SIGTERM to the parent stops every child gracefully (each gets one SIGTERM:
  in-flight requests are answered, the worker's runs stop at their next batch), then
  SIGKILL after the grace period for any still running. The parent exits 0 only if every
  child stopped cleanly (exit code 0); one killed after the grace period, or one that
  failed while stopping, is reported and makes it exit 1. The children live in their own
  process group, so a terminal's Ctrl-C reaches them through the parent, once.
- A child that dies on its own is started again (its pid and status logged). One that
  dies within `FAST_FAILURE` seconds of its start three times in a row stops them all:
  the parent exits 1 with the child's status (a bad config, a port the child cannot use).
- If the parent itself is killed, the kernel sends each child SIGTERM (Linux
  `PR_SET_PDEATHSIG`): no orphan keeps serving.
- SIGINT and SIGTERM are blocked across each fork, until the child has its own handlers:
  a signal meant for the child in that moment waits for them instead of reaching the
  parent's handler copied into it (which would swallow it, and the child would serve on
  until killed). SIGCHLD is at its default while supervising, even if whoever started the
  parent ignored it: ignored, the kernel reaps the children and none is seen to die.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FAST_FAILURE", "Supervisor"]

log = logging.getLogger("interlink.serve")

FAST_FAILURE = 5.0
"""A child that exits within this many seconds of its start failed at start-up."""
_GIVE_UP_AFTER = 3
_PR_SET_PDEATHSIG = 1
_STOPS = frozenset({signal.SIGINT, signal.SIGTERM})


@dataclass
class _Child:
    index: int
    pid: int
    started: float
    fast_failures: int = 0


@dataclass
class Supervisor:
    """Forks `count` children running `serve(index)`, keeps them running, stops them.

    `serve` runs in the child and returns when its server has stopped; the child then
    exits 0 (or 1 if `serve` raised). `report` prints a line for the operator.
    """

    count: int
    serve: Callable[[int], None]
    report: Callable[[str], None]
    grace: float = 15.0
    poll: float = 0.1
    _children: dict[int, _Child] = field(default_factory=dict)
    _stopping: bool = False
    _failed: str | None = None
    restarts: int = 0

    def run(self) -> int:
        """Supervise until stopped; the exit code for the parent: 0, or 1 when children
        failed at start-up or did not stop cleanly."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOPS}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            for index in range(self.count):
                self._start(index, fast_failures=0)
            while self._children:
                self._reap()
                if self._stopping:
                    self._stop_all()
                    break
                time.sleep(self.poll)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self._failed is not None:
            self._say(self._failed)
            return 1
        return 0

    # -- children ---------------------------------------------------------------------------

    def _start(self, index: int, *, fast_failures: int) -> None:
        _flush()
        parent = os.getpid()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:  # pragma: no cover - the child (measured by the tests from outside)
            code = 0
            try:
                _become_child(parent, mask)
                self.serve(index)
            except BaseException as exc:  # a child must never return into the parent's code
                code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 1
                if not isinstance(exc, (SystemExit, KeyboardInterrupt)):
                    with contextlib.suppress(OSError, ValueError):
                        print(
                            f"server process {index}: {type(exc).__name__}: {exc}",
                            file=sys.stderr,
                        )
            finally:
                _flush()
                os._exit(code)
        with contextlib.suppress(OSError):  # the child does it too; whichever runs first
            os.setpgid(pid, pid)
        self._children[pid] = _Child(index, pid, time.monotonic(), fast_failures)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _reap(self) -> None:
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self._children.clear()
                return
            if pid == 0:
                return
            child = self._children.pop(pid, None)
            if child is None:
                continue
            if self._stopping:
                if not _stopped_cleanly(status):
                    self._unclean(
                        f"server process {child.index} {_describe(status)} while stopping"
                    )
                continue
            self._restart(child, _describe(status))

    def _restart(self, child: _Child, how: str) -> None:
        lived = time.monotonic() - child.started
        fast = child.fast_failures + 1 if lived < FAST_FAILURE else 0
        if fast >= _GIVE_UP_AFTER:
            self._failed = (
                f"server process {child.index} {how} {fast} times within "
                f"{FAST_FAILURE:g} s of starting; stopping"
            )
            self._stopping = True
            return
        self._say(f"server process {child.index} (pid {child.pid}) {how}; starting it again")
        self.restarts += 1
        self._start(child.index, fast_failures=fast)

    def _stop_all(self) -> None:
        for pid in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while self._children and time.monotonic() < deadline:
            self._reap()
            time.sleep(self.poll)
        for pid in list(self._children):
            self._unclean(f"server process {self._children[pid].index} did not stop; killed")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._children.clear()

    def _unclean(self, line: str) -> None:
        """A child that did not stop as asked (its in-flight work may be cut short): the
        line for the operator, and the parent's exit code is 1."""
        self._say(line)
        if self._failed is None:
            self._failed = "the server processes did not all stop cleanly"

    def _say(self, line: str) -> None:
        """`report` a line; one that cannot be written (the output is a pipe whose reader
        went away, journald restarted) is lost, and supervising goes on: the parent's end
        would stop every child."""
        with contextlib.suppress(OSError, ValueError):
            self.report(line)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping = True


def _become_child(parent: int, mask: set[int | signal.Signals]) -> None:  # pragma: no cover
    """The child's own process group (the terminal's Ctrl-C goes to the parent, which
    passes on one SIGTERM), its default signal handlers (uvicorn installs its own), then
    the signals the fork blocked (`mask`: the parent's mask before it), and SIGTERM when
    the parent dies."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    for sig in _STOPS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl: do not serve alone
            os._exit(1)


def _flush() -> None:
    """Flush stdout and stderr before a fork or an exit (so no buffered line is written
    twice), whether or not they can still be written."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _stopped_cleanly(status: int) -> bool:
    """Exited 0, or ended by the SIGTERM it was sent before it had handlers of its own
    (a child still starting, with nothing in flight)."""
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) in _STOPS
    return os.waitstatus_to_exitcode(status) == 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
