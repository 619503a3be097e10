"""The inbox with its writer in a process of its own: what `interlink serve` uses on SQLite.

```python
inbox = ProcessInbox(store, queue, config)     # starts the writer process
stored = await inbox.accept(arrival)           # answered once committed, as with Inbox
inbox.reject(refusal)
await inbox.aclose()                           # everything sent is stored, then it stops
```

Why a process: with the writer as a thread, storing and answering shared one GIL. A
batch could start its commit only when the event loop let go, so the loop and the
commit's fsync took turns, and the 16 senders of the benchmark moved in lockstep with
the commits (docs/benchmarks.md, "Webhook ingest"). The writer process
(webhooks/_inbox_child.py) runs the same `InboxWriter` on its own core: while it commits
one batch, the loop verifies and forwards the next.

The server's side is all on its event loop, without threads: each arrival is a frame
(webhooks/_inbox_frames.py) queued for one socket write per loop turn; the answers are
read when the socket is readable, and each resolves its request's future. The writer
answers an arrival only after its commit, so a 202 still means "stored durably".

When the writer process dies, every request waiting on it answers 503 (the sender
retries; a delivery committed before the death is then a duplicate, answered 200), and
the next arrival starts a new writer, at most one start a second (arrivals in between
wait for it). At most MAX_WAITING
deliveries (MAX_WAITING_BYTES of bodies) wait for it, as with the thread.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import pickle
import socket
import subprocess
import sys
from collections import deque

from interlink.config import InterlinkConfig
from interlink.jobs import Queue
from interlink.store import Store

from ._inbox import (
    MAX_WAITING,
    MAX_WAITING_BYTES,
    Arrival,
    InboxClosedError,
    InboxFullError,
    Refusal,
    Stored,
)
from ._inbox_frames import (
    BATCH,
    FAILED,
    STORED,
    FrameReader,
    arrival_frame,
    config_frame,
    read_batch,
    read_failed,
    read_stored,
    refusal_frame,
)

__all__ = ["InboxWriterError", "ProcessInbox"]

log = logging.getLogger("interlink.webhooks")

RESTART_AFTER = 1.0
"""Seconds between two starts of the writer process (one that dies at once is not started
again in a loop)."""
STOP_TIMEOUT = 10.0
"""Seconds `aclose` waits for the writer to store what it was sent."""
MAX_REFUSAL_BYTES = 16 * 1024 * 1024
"""Refusals are dropped (counted, not logged) while this much waits to be sent to a stuck
writer: a flood of bad signatures must not grow memory without bound."""
_READ = 1 << 20
_BUFFERS = 512
"""At most this many frames to one sendmsg (under the system's IOV_MAX)."""
SEND_CHUNK = 256 * 1024
"""About this many bytes offered to one sendmsg."""
CHILD_MODULE = "interlink.webhooks._inbox_child"


class InboxWriterError(RuntimeError):
    """The writer process stopped (or could not store a batch): the request answers 503."""


class ProcessInbox:
    """`Inbox`'s interface, storing through a writer process (module docstring)."""

    def __init__(self, store: Store, queue: Queue, config: InterlinkConfig) -> None:
        self.store = store
        self.queue = queue
        self.batches = 0
        """Transactions the writer committed, for tests and the benchmark."""
        self.dropped_refusals = 0
        self.starts = 0
        """Writer processes started (1, and one more after each death)."""
        self._config = pickle.dumps(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._started_at = -RESTART_AFTER
        self._restart: asyncio.TimerHandle | None = None
        self._reader = FrameReader()
        self._seq = itertools.count()
        self._waiting: dict[int, tuple[asyncio.Future[Stored], int]] = {}
        self._waiting_bytes = 0
        self._deadlines: list[tuple[float, int]] = []
        """A heap of (deadline, seq) of the requests that wait with a timeout."""
        self._sweeper: asyncio.TimerHandle | None = None
        self._out: deque[bytes] = deque()
        """Frames not yet (wholly) sent: the first from `_out_offset` on."""
        self._out_offset = 0
        self._out_size = 0
        """Bytes of `_out` not yet sent."""
        self._ended = False
        """The writer closed its end of the socket (set while closing)."""
        self._writable = False
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The writer process's id, while it runs."""
        return self._child.pid if self._child is not None else None

    # -- the requests' side ----------------------------------------------------------------

    async def accept(self, arrival: Arrival, *, timeout: float | None = None) -> Stored:
        """Store `arrival`; its Stored once committed (see `Inbox.accept`)."""
        loop = self._bound()
        size = len(arrival.body)
        # Deliveries waiting for their answers, and frames not yet sent (a request that
        # stopped waiting leaves its frame behind, body and all, until the writer reads).
        if (
            len(self._waiting) >= MAX_WAITING
            or len(self._out) >= MAX_WAITING
            or (self._waiting and self._waiting_bytes + size > MAX_WAITING_BYTES)
            or (self._out and self._out_size + size > MAX_WAITING_BYTES)
        ):
            raise InboxFullError(
                f"{len(self._waiting)} deliveries ({self._waiting_bytes} bytes) are waiting "
                f"for the database already, {self._out_size} bytes not yet sent to it (the "
                "inbox's writer is stuck or slow); this one was not taken"
            )
        seq = next(self._seq)
        frame = arrival_frame(seq, arrival)  # before anything is counted: it may fail
        self._ensure_writer()
        future: asyncio.Future[Stored] = loop.create_future()
        self._waiting[seq] = (future, size)
        self._waiting_bytes += size
        self._send(frame)
        if timeout is not None:
            deadlines = self._deadlines
            while deadlines and deadlines[0][1] not in self._waiting:
                heapq.heappop(deadlines)  # answered already: the heap stays as long as the wait
            deadline = loop.time() + timeout
            heapq.heappush(deadlines, (deadline, seq))
            if self._sweeper is None or deadline < self._sweeper.when():
                if self._sweeper is not None:
                    self._sweeper.cancel()
                self._sweeper = loop.call_at(deadline, self._sweep)
        try:
            return await future
        finally:
            entry = self._waiting.pop(seq, None)
            if entry is not None:
                self._waiting_bytes -= entry[1]

    def reject(self, refusal: Refusal) -> None:
        """Queue a refusal for the rejected-deliveries log (from the event loop)."""
        if self._closed or self._out_size > MAX_REFUSAL_BYTES:
            self.dropped_refusals += 1
            return
        try:
            self._bound()
            self._ensure_writer()
        except Exception:
            self.dropped_refusals += 1
            return
        self._send(refusal_frame(refusal))

    async def aclose(self, timeout: float = STOP_TIMEOUT) -> None:
        """Send what is queued, let the writer store and answer it, then stop it."""
        if self._closed:
            return
        self._closed = True
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        child, sock = self._child, self._sock
        if child is None or sock is None:
            self._stop_child(InboxClosedError("the webhook inbox is shutting down"))
            return
        loop = self._loop
        assert loop is not None
        deadline = loop.time() + timeout
        while self._out and child.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.005)  # the writer callback drains it
        try:
            sock.shutdown(socket.SHUT_WR)  # the writer's end of file, after the last frame
        except OSError:
            pass
        # Its last answers are read up to the socket's end (the writer closes it as it
        # exits), then it is waited for.
        while not self._ended and child.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.005)
        if not self._ended:
            self._readable()  # what it wrote before it exited
        while child.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self._stop_child(InboxClosedError("the webhook inbox is shutting down"))

    def close(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop without a running loop: the writer stores what it has read, then ends."""
        self._closed = True
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        child, sock = self._child, self._sock
        if child is not None and sock is not None:
            try:
                sock.setblocking(True)
                sock.settimeout(timeout)
                if self._out:
                    first = memoryview(self._out[0])[self._out_offset :]
                    sock.sendall(b"".join([first, *list(self._out)[1:]]))
                    self._out.clear()
                    self._out_offset = self._out_size = 0
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._stop_child(InboxClosedError("the webhook inbox is shutting down"))

    def _bound(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise InboxClosedError("the webhook inbox is shutting down")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("a ProcessInbox serves the event loop that first used it")
        return loop

    # -- the writer process ----------------------------------------------------------------

    def _ensure_writer(self) -> None:
        """Start the writer process, or have it started: at most one start every
        RESTART_AFTER seconds. Until then the frames wait here (MAX_WAITING bounds them);
        a start that fails fails the deliveries waiting for it."""
        if self._child is not None or self._restart is not None:
            return
        loop = self._loop
        assert loop is not None
        due = self._started_at + RESTART_AFTER
        if loop.time() >= due:
            self._start()
        else:
            self._restart = loop.call_at(due, self._start_later)

    def _start_later(self) -> None:
        self._restart = None
        if self._closed or self._child is not None:
            return
        try:
            self._start()
        except Exception as exc:
            log.error("the webhook inbox's writer process could not be started: %s", exc)
            self._stop_child(InboxWriterError("the inbox's writer process could not start"))

    def _start(self) -> None:
        loop = self._loop
        assert loop is not None
        self._started_at = loop.time()
        ours, theirs = socket.socketpair()
        try:
            child = subprocess.Popen(
                # -P: not the server's working folder first on sys.path (`python -m`
                # would put it there; the `interlink` script does not).
                [
                    sys.executable,
                    "-P",
                    "-m",
                    CHILD_MODULE,
                    str(theirs.fileno()),
                    # It logs at the server's level (`--log-level`, `-v`), to its stderr.
                    str(logging.getLogger("interlink.webhooks").getEffectiveLevel()),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock, self._child = ours, child
        self._reader = FrameReader()
        self._writable = False
        self.starts += 1
        loop.add_reader(ours, self._readable)
        # The config first, then whatever waited for this start.
        config = config_frame(self._config)
        self._out.appendleft(config)
        self._out_size += len(config)
        self._ended = False
        self._flush()

    def _stop_child(self, error: Exception) -> None:
        """Forget the writer process (stopped, or to be stopped) and fail what waits on it."""
        sock, child = self._sock, self._child
        self._sock = self._child = None
        if sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock)
                if self._writable:
                    self._loop.remove_writer(sock)
            sock.close()
        self._writable = False
        self._out.clear()
        self._out_offset = self._out_size = 0
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        for future, _ in list(self._waiting.values()):
            if not future.done():
                future.set_exception(error)

    def _died(self) -> None:
        child = self._child
        code = None
        if child is not None:
            try:
                code = child.wait(0.05)  # its socket closed: it is ending, if not gone
            except subprocess.TimeoutExpired:
                pass
        log.error(
            "the webhook inbox's writer process stopped (exit code %s); %d deliveries "
            "waiting on it are answered 503, and their senders retry",
            code,
            len(self._waiting),
        )
        self._stop_child(InboxWriterError("the inbox's writer process stopped"))

    # -- the socket ------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        self._out.append(frame)
        self._out_size += len(frame)
        # At once, not once per loop turn: the writer, when idle, starts its commit
        # sooner, and while it commits the frames wait in the socket for its next read
        # (8,060/7,837/8,062 deliveries/s against 7,851/7,284/7,309 once per turn,
        # interleaved runs). A writer that reads slower than this writes leaves the rest
        # to `_drain`, when the socket can take more.
        if not self._writable:
            self._flush()

    def _flush(self) -> None:
        """Send what the socket takes, with no copy: the frames as they are (the first from
        the offset a partial send left), many to a system call."""
        sock = self._sock
        out = self._out
        if sock is None or not out:
            return
        while out:
            # About what the socket takes at once (never the whole backlog, which would
            # be offered again at every call): the first frame from its offset, then
            # whole frames up to SEND_CHUNK bytes.
            first = memoryview(out[0])[self._out_offset : self._out_offset + SEND_CHUNK]
            buffers: list[bytes | memoryview] = [first]
            size = len(first)
            for frame in itertools.islice(out, 1, _BUFFERS):
                if size >= SEND_CHUNK:
                    break
                buffers.append(frame)
                size += len(frame)
            try:
                sent = sock.sendmsg(buffers)
            except BlockingIOError:
                break
            except OSError:
                self._died()
                return
            self._out_size -= sent
            whole = sent >= size
            while sent:
                left = len(out[0]) - self._out_offset
                if sent < left:
                    self._out_offset += sent
                    break
                sent -= left
                out.popleft()
                self._out_offset = 0
            if not whole:
                break  # the socket is full: the rest when it can take more
        assert self._loop is not None
        if out and not self._writable:
            self._loop.add_writer(sock, self._drain)
            self._writable = True
        elif not out and self._writable:
            self._loop.remove_writer(sock)
            self._writable = False

    def _drain(self) -> None:
        self._flush()

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(_READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self._closed:  # aclose let it end, and stops it
                assert self._loop is not None
                self._loop.remove_reader(sock)
                self._ended = True
                return
            self._died()
            return
        waiting = self._waiting
        for kind, frame in self._reader.feed(data):
            if kind == STORED:
                seq, stored = read_stored(frame)
                entry = waiting.get(seq)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(stored)
            elif kind == FAILED:
                seq, error = read_failed(frame)
                entry = waiting.get(seq)
                if entry is not None and not entry[0].done():
                    entry[0].set_exception(InboxWriterError(error))
            elif kind == BATCH:
                read_batch(frame)
                self.batches += 1

    def _sweep(self) -> None:
        """Fail the requests whose wait ran out (the delivery may still be stored later)."""
        self._sweeper = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, seq = heapq.heappop(deadlines)
            entry = self._waiting.get(seq)
            if entry is not None and not entry[0].done():
                entry[0].set_exception(TimeoutError("the delivery was not committed in time"))
        while deadlines and deadlines[0][1] not in self._waiting:
            heapq.heappop(deadlines)  # answered already
        if deadlines:
            self._sweeper = loop.call_at(deadlines[0][0], self._sweep)
