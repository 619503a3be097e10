"""Review, session 9: the webhook inbox's writer process (webhooks/_inbox_process.py,
_inbox_child.py, _inbox_frames.py), attacked on a real SQLite file and a real writer
process. Each test failed on the code it was written against (then marked xfail(strict))
and passes since its defect was fixed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from interlink.store import rejections
from interlink.webhooks import (
    InboxFullError,
    ProcessInbox,
    Refusal,
    Stored,
    _inbox_child,
    _inbox_frames,
    _inbox_process,
)
from interlink.webhooks._inbox import InboxWriter
from tests.webhooks.inbox_rig import arrival as _arrival, started as _started, stored as _stored

MiB = 1024 * 1024


class _HugeBody(bytes):
    """A body that says it is 2 GiB long: what `arrival_frame` sees of a delivery a source
    with `max_body: 3GiB` (the config sets no upper bound) took, without the memory."""

    def __len__(self) -> int:
        return 2**31


# -- 1. a frame that cannot be built leaks its place among the waiting ---------------------


@pytest.mark.parametrize("bad", ["body_of_2_gib", "header_with_a_lone_surrogate"])
async def test_a_delivery_whose_frame_cannot_be_built_does_not_keep_its_place(
    opened, bad: str
) -> None:
    """One delivery the frame format cannot carry must fail alone: its request answers
    5xx, and the next deliveries are stored as usual (the MAX_WAITING count and the
    MAX_WAITING_BYTES sum are released exactly once, whatever `accept` raised)."""
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        await inbox.accept(_arrival("warm"), timeout=30)
        if bad == "body_of_2_gib":
            poison = _arrival("big", body=_HugeBody(b"{}"))
        else:
            poison = _arrival("odd", headers={"webhook-id": "x\ud800"})
        with pytest.raises(Exception) as raised:
            await inbox.accept(poison, timeout=30)
        assert not isinstance(raised.value, InboxFullError)  # the fault fired where meant
        assert inbox._waiting == {} and inbox._waiting_bytes == 0, (
            f"{len(inbox._waiting)} waiting, {inbox._waiting_bytes} bytes held after the "
            "failed accept"
        )
        after = await inbox.accept(_arrival("after"), timeout=30)  # InboxFullError now
        assert not after.duplicate
    finally:
        await inbox.aclose()
    assert "dafter" in set(_stored(store))


# -- 2. deliveries that timed out still hold their bodies, without a bound -----------------


async def test_a_stuck_writer_does_not_grow_the_servers_memory_without_bound(
    opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_WAITING_BYTES is what bounds the bodies a server holds for a writer that hangs
    (docs: "must not make the server hold every delivery that arrives meanwhile, body
    and all"). Requests time out after STORE_TIMEOUT and their senders retry: each round
    of retries must not add its bodies to what is held for the stopped writer."""
    bound = 2 * MiB
    monkeypatch.setattr(_inbox_process, "MAX_WAITING_BYTES", bound)
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        pid = await _started(inbox)
        os.kill(pid, signal.SIGSTOP)
        try:
            body = b"x" * (256 * 1024)
            timed_out = 0
            for round_ in range(6):  # six rounds of senders retrying, 2 MiB each
                outcomes = await asyncio.gather(
                    *(
                        inbox.accept(_arrival(f"{round_}_{k}", body=body), timeout=0.05)
                        for k in range(8)
                    ),
                    return_exceptions=True,
                )
                timed_out += sum(isinstance(o, TimeoutError) for o in outcomes)
            assert timed_out > 0  # the fault fired: the writer is stuck, waits run out
            held = inbox._out_size + inbox._waiting_bytes
            assert held <= bound + 512 * 1024, (
                f"{held} bytes of bodies held for a stopped writer, MAX_WAITING_BYTES {bound}"
            )
        finally:
            os.kill(pid, signal.SIGCONT)
    finally:
        await inbox.aclose()


# -- 3. the backlog is copied whole at every write --------------------------------------


class _CountingSocket:
    """The inbox's socket, counting the bytes `_flush` hands to `send` (each of them built
    by a join and a slice of the backlog, in the current code)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.offered = 0
        self.sends = 0

    def send(self, data: bytes) -> int:
        self.offered += len(data)
        self.sends += 1
        return self.sock.send(data)

    def sendmsg(self, buffers: list[Any]) -> int:
        self.offered += sum(len(b) for b in buffers)
        self.sends += 1
        return self.sock.sendmsg(buffers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


async def test_draining_a_backlog_copies_it_a_bounded_number_of_times(opened) -> None:
    """After the writer was held up (a commit waiting for another server process's lock,
    a slow disk), the server sends what piled up as the socket takes it. Each byte should
    be copied a few times, not once per socket-buffer's worth drained before it: 32 MiB
    queued must not cost gigabytes of copying on the event loop that answers requests."""
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        await inbox.accept(_arrival("warm"), timeout=30)
        pid = inbox.pid
        assert pid is not None and inbox._sock is not None
        counting = _CountingSocket(inbox._sock)
        inbox._sock = counting  # type: ignore[assignment]
        os.kill(pid, signal.SIGSTOP)
        try:
            body = b"y" * (64 * 1024)
            waiting = [
                asyncio.ensure_future(inbox.accept(_arrival(n, body=body), timeout=60))
                for n in range(512)
            ]
            await asyncio.sleep(0.2)
            backlog = inbox._out_size
            assert backlog > 16 * MiB  # the fault fired: the bodies wait in the server
            counting.offered = counting.sends = 0
        finally:
            os.kill(pid, signal.SIGCONT)
        stored = await asyncio.gather(*waiting)
        assert len(stored) == 512
    finally:
        await inbox.aclose()
    assert counting.offered <= 4 * backlog, (
        f"{counting.offered / MiB:.0f} MiB handed to send() in {counting.sends} calls to "
        f"drain a backlog of {backlog / MiB:.0f} MiB"
    )


# -- 4. the writer process drops the refusals read with a batch that failed --------------


def test_refusals_read_with_a_failed_batch_still_reach_the_log(
    opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread (`Inbox._run`) puts a failed batch's refusals back
    (`_requeue_refusals`) and logs them with the next commit. The writer process reads
    arrivals and refusals together too; when the arrivals' transaction fails once (a
    disk error, a lock), the refusals read with them must still be logged."""
    config, store, queue = opened
    writer = InboxWriter(store, queue)
    real_write = writer._write
    calls = {"n": 0}

    def failing_once(connection: Any, batch: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))
        return real_write(connection, batch)

    monkeypatch.setattr(writer, "_write", failing_once)
    monkeypatch.setattr(_inbox_child.time, "sleep", lambda _s: None)

    ours, theirs = socket.socketpair()
    now = time.time()
    first = _inbox_frames.arrival_frame(1, _arrival(1)) + _inbox_frames.refusal_frame(
        Refusal("shop", "signature_mismatch", 401, "first refusal", "10.0.0.1", now)
    )
    second = _inbox_frames.arrival_frame(2, _arrival(2)) + _inbox_frames.refusal_frame(
        Refusal("shop", "signature_mismatch", 401, "second refusal", "10.0.0.2", now)
    )
    reader = _inbox_frames.FrameReader()
    frames = reader.feed(first)  # what the writer read with its config
    answers = bytearray()

    def read_answers() -> None:
        while data := ours.recv(65536):
            answers.extend(data)

    reading = threading.Thread(target=read_answers, daemon=True)
    reading.start()
    ours.sendall(second)
    ours.shutdown(socket.SHUT_WR)
    try:
        _inbox_child._loop(theirs, reader, writer, frames)
    finally:
        theirs.close()
        reading.join(10)
        ours.close()
    kinds = [kind for kind, _ in _inbox_frames.FrameReader().feed(bytes(answers))]
    assert calls["n"] == 2 and kinds == [  # the fault fired: batch 1 failed, batch 2 stored
        _inbox_frames.FAILED,
        _inbox_frames.STORED,
        _inbox_frames.BATCH,
    ]
    with store.engine.connect() as conn:
        logged = sorted(conn.execute(sa.select(rejections.c.message)).scalars())
    assert logged == ["first refusal", "second refusal"]


# -- 5. the writer process imports from the directory the server was started in ----------


async def test_the_writer_does_not_import_from_the_working_directory(
    opened, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`interlink serve` is started from a project folder; the server imports nothing from
    it (a console script's sys.path starts at its bin folder), so the writer process must
    not either: a `orjson.py` (or `sqlalchemy.py`, `yaml.py`...) lying there must not be
    run by the writer, nor keep every delivery from being stored."""
    project = tmp_path / "project"
    project.mkdir()
    marker = project / "imported.txt"
    (project / "orjson.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('the writer ran this file')\n"
        "raise ImportError('a project file, not the orjson package')\n"
    )
    monkeypatch.chdir(project)
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        stored = await inbox.accept(_arrival(1), timeout=30)
        assert not stored.duplicate
    finally:
        await inbox.aclose()
        assert sys.modules["orjson"].__file__ != str(project / "orjson.py")
    assert not marker.exists(), "the writer process imported the project's orjson.py"


# -- 6. a SIGTERM to the service's every process kills the writer first ------------------


async def test_the_writer_outlives_a_sigterm_sent_to_the_whole_service(opened) -> None:
    """`systemctl stop` (KillMode=control-group, the default) sends SIGTERM to the server
    AND its writer process at once, as a terminal's Ctrl-C sends SIGINT to both. The
    server then stops gracefully, storing what is in flight before it closes the writer's
    socket; the writer must still be there to store it (it ends at the socket's end)."""
    config, store, queue = opened
    inbox = ProcessInbox(store, queue, config)
    try:
        pid = await _started(inbox)
        os.kill(pid, signal.SIGTERM)  # systemd: the writer's SIGTERM ...
        await asyncio.sleep(0.3)  # (delivered: a writer that dies of it is gone by now)
        in_flight = [
            asyncio.ensure_future(inbox.accept(_arrival(f"in_flight_{k}"), timeout=30))
            for k in range(5)
        ]
        await asyncio.sleep(0)
    finally:
        await inbox.aclose()  # ... and the server's: it stops, storing what is in flight
    outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
    assert all(isinstance(o, Stored) for o in outcomes), outcomes
    assert {f"din_flight_{k}" for k in range(5)} <= set(_stored(store))
