"""The inbox's writer process: `python -m interlink.webhooks._inbox_child FD`.

Started by `ProcessInbox` (webhooks/_inbox_process.py) with one end of a socket pair as
FD. It reads the config (the first frame), opens the database and the job queue, then
loops: read every arrival and refusal waiting on the socket, store the arrivals in
transactions of at most MAX_BATCH deliveries and MAX_BATCH_BYTES of bodies with their
jobs (`InboxWriter`, the same code as the writer thread, commits with
`synchronous=FULL` on SQLite), answer each arrival (STORED,
or FAILED with the error), write the refusals (kept for the next turn when they cannot
be). It never answers an arrival before its commit returned.

It ends when the server closes its end (end of file: everything read has been stored and
answered by then), and when the server dies, for the same reason. It ignores SIGINT and
SIGTERM: a Ctrl-C in the terminal reaches the whole process group, `systemctl stop` the
whole service, and the server, which stops on them, still sends what it holds before it
closes the socket.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import sys
import time
from typing import Any

import sqlalchemy as sa

from ._inbox import MAX_BATCH, MAX_REFUSALS, Arrival, InboxWriter, Refusal, _short, batch_length
from ._inbox_frames import (
    ARRIVAL,
    CONFIG,
    REFUSAL,
    FrameReader,
    batch_frame,
    failed_frame,
    read_arrival,
    read_refusal,
    stored_frame,
)

log = logging.getLogger("interlink.webhooks")

_READ = 1 << 20


def serve(sock: socket.socket) -> None:
    """Store what arrives on `sock` until it is closed."""
    from interlink.jobs import open_queue
    from interlink.store import Store

    reader = FrameReader()
    config: Any = None
    pending: list[tuple[int, memoryview]] = []
    while config is None:
        data = sock.recv(_READ)
        if not data:
            return
        pending.extend(reader.feed(data))
        if pending and pending[0][0] == CONFIG:
            # From our own parent over the socket pair it made, never the network.
            config = pickle.loads(pending.pop(0)[1][5:])  # nosec
    store = Store.open(config.database)
    queue = open_queue(config, store)
    writer = InboxWriter(store, queue)
    try:
        _loop(sock, reader, writer, pending)
    finally:
        queue.close()
        store.close()


def _loop(
    sock: socket.socket,
    reader: FrameReader,
    writer: InboxWriter,
    frames: list[tuple[int, memoryview]],
) -> None:
    connection: sa.Connection | None = None
    failures = 0
    refusals: list[Refusal] = []  # kept while they cannot be written, as the thread does
    try:
        while True:
            if not frames:
                data = sock.recv(_READ)
                if not data:
                    # The server closed its end: every arrival read is answered.
                    if refusals:
                        connection = _log(writer, connection, refusals)
                    return
                frames = reader.feed(data)
                frames.extend(_more(sock, reader))
            arrivals: list[tuple[int, Arrival]] = []
            for kind, frame in frames:
                if kind == ARRIVAL:
                    arrivals.append(read_arrival(frame))
                elif kind == REFUSAL:
                    refusals.append(read_refusal(frame))
            frames = []
            if len(refusals) > MAX_REFUSALS:
                log.warning(
                    "the rejected-deliveries log lost %d lines: too many waiting",
                    len(refusals) - MAX_REFUSALS,
                )
                del refusals[MAX_REFUSALS:]
            failed = False
            start = 0
            while start < len(arrivals):
                sizes = [len(a.body) for _, a in arrivals[start : start + MAX_BATCH]]
                batch = arrivals[start : start + batch_length(sizes)]
                start += len(batch)
                began = time.perf_counter()
                try:
                    if connection is None or connection.closed or connection.invalidated:
                        connection = writer._connect()
                    results = writer._write(connection, [a for _, a in batch])
                except Exception as exc:
                    failures += 1
                    failed = True
                    error = _short(exc)
                    log.error("storing %d webhook deliveries failed: %s", len(batch), error)
                    if connection is not None:
                        writer._discard(connection)
                    connection = None
                    sock.sendall(b"".join(failed_frame(seq, error) for seq, _ in batch))
                    time.sleep(min(0.05 * 2 ** min(failures, 5), 1.0))
                    continue
                failures = 0
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "stored %d deliveries in %.1f ms",
                        len(batch),
                        (time.perf_counter() - began) * 1000,
                    )
                replies = [stored_frame(seq, s) for (seq, _), s in zip(batch, results, strict=True)]
                replies.append(batch_frame(len(batch)))
                sock.sendall(b"".join(replies))
            if refusals and not failed:
                connection = _log(writer, connection, refusals)
    finally:
        if connection is not None:
            writer._release(connection)


def _log(
    writer: InboxWriter, connection: sa.Connection | None, refusals: list[Refusal]
) -> sa.Connection | None:
    """Write `refusals` (emptied when written, kept when no connection can be made)."""
    if connection is None or connection.closed or connection.invalidated:
        try:
            connection = writer._connect()
        except Exception as exc:
            log.warning("the rejected-deliveries log waits: %s", _short(exc))
            return None
    writer._log_refusals(connection, refusals)
    refusals.clear()
    return connection


def _more(sock: socket.socket, reader: FrameReader) -> list[tuple[int, memoryview]]:
    """The frames already waiting on the socket, read without blocking."""
    frames: list[tuple[int, memoryview]] = []
    while True:
        try:
            data = sock.recv(_READ, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        if not data:
            break  # the end: the next blocking read sees it too
        frames.extend(reader.feed(data))
    return frames


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The command line's log line (cli/_logging.py), so that the writer's lines read as the
server's do in one stream."""


def _log_as_the_server(level: int) -> None:
    """interlink's loggers at the server's level, to stderr (the server's own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("interlink")
    logger.setLevel(level)
    logger.addHandler(handler)
    logger.propagate = False


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the terminal's whole process group, and `systemctl stop` sends
    # SIGTERM to the service's every process: the server stops on them and sends what it
    # holds before it closes the socket, the end this process waits for.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _log_as_the_server(int(argv[2]) if len(argv) > 2 else logging.WARNING)
    log.info("the inbox's writer process %d started", os.getpid())
    sock = socket.socket(fileno=int(argv[1]))
    try:
        serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the server went away mid-answer: it was told nothing, the sender retries
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
