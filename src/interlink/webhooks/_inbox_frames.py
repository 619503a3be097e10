"""The frames between a server process and its inbox's writer process (one socket pair).

Every frame is `<u32 length><u8 kind><payload>`, `length` counting kind and payload.
Texts are UTF-8, each after its `<i32>` byte length (-1 for None).

```
server -> writer   CONFIG   pickled InterlinkConfig (the first frame, once)
                   ARRIVAL  seq u64, received_at f64, source, delivery_id, event_type,
                            body, headers (JSON)
                   REFUSAL  received_at f64, status u16, source, reason, message, address
writer -> server   STORED   seq u64, row id i64, duplicate u8, job id i64 (-1: none), status
                   FAILED   seq u64, the error (type and first line; never a body)
                   BATCH    deliveries committed together, u32 (one per commit)
```
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import orjson

from ._inbox import Arrival, Refusal, Stored

__all__ = [
    "ARRIVAL",
    "BATCH",
    "CONFIG",
    "FAILED",
    "REFUSAL",
    "STORED",
    "FrameReader",
    "arrival_frame",
    "batch_frame",
    "config_frame",
    "failed_frame",
    "read_arrival",
    "read_batch",
    "read_failed",
    "read_refusal",
    "read_stored",
    "refusal_frame",
    "stored_frame",
]

CONFIG, ARRIVAL, REFUSAL = 0, 1, 2
STORED, FAILED, BATCH = 1, 2, 3

_LENGTH = struct.Struct("<I")
_ARRIVAL = struct.Struct("<IBQdiiiii")
_REFUSAL = struct.Struct("<IBdHiiii")
_STORED = struct.Struct("<IBQqBqi")
_FAILED = struct.Struct("<IBQi")
_BATCH = struct.Struct("<IBI")
_KIND = struct.Struct("<IB")


def _text(value: str | None) -> tuple[bytes, int]:
    if value is None:
        return b"", -1
    data = value.encode("utf-8", "surrogatepass")
    return data, len(data)


def _fields(data: memoryview, offset: int, lengths: tuple[int, ...]) -> Iterator[bytes | None]:
    for length in lengths:
        if length < 0:
            yield None
            continue
        yield bytes(data[offset : offset + length])
        offset += length


def _str(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "surrogatepass")


def config_frame(pickled: bytes) -> bytes:
    return _KIND.pack(1 + len(pickled), CONFIG) + pickled


def arrival_frame(seq: int, arrival: Arrival) -> bytes:
    source, source_n = _text(arrival.source)
    delivery, delivery_n = _text(arrival.delivery_id)
    event, event_n = _text(arrival.event_type)
    headers = orjson.dumps(arrival.headers)
    body = arrival.body
    size = _ARRIVAL.size - 4 + source_n + delivery_n + max(event_n, 0) + len(body) + len(headers)
    head = _ARRIVAL.pack(
        size,
        ARRIVAL,
        seq,
        arrival.received_at,
        source_n,
        delivery_n,
        event_n,
        len(body),
        len(headers),
    )
    return b"".join((head, source, delivery, event, body, headers))


def read_arrival(data: memoryview) -> tuple[int, Arrival]:
    _, _, seq, received_at, *lengths = _ARRIVAL.unpack_from(data)
    source, delivery, event, body, headers = _fields(data, _ARRIVAL.size, tuple(lengths))
    assert source is not None and delivery is not None and body is not None
    arrival = Arrival(
        source.decode(),
        delivery.decode(),
        _str(event),
        received_at,
        body,
        orjson.loads(headers) if headers else {},
    )
    return seq, arrival


def refusal_frame(refusal: Refusal) -> bytes:
    parts = [_text(v) for v in (refusal.source, refusal.reason, refusal.message, refusal.address)]
    size = _REFUSAL.size - 4 + sum(max(n, 0) for _, n in parts)
    head = _REFUSAL.pack(size, REFUSAL, refusal.received_at, refusal.status, *(n for _, n in parts))
    return b"".join((head, *(b for b, _ in parts)))


def read_refusal(data: memoryview) -> Refusal:
    _, _, received_at, status, *lengths = _REFUSAL.unpack_from(data)
    source, reason, message, address = (
        _str(v) for v in _fields(data, _REFUSAL.size, tuple(lengths))
    )
    assert source is not None and reason is not None and message is not None
    return Refusal(source, reason, status, message, address, received_at)


def stored_frame(seq: int, stored: Stored) -> bytes:
    status, status_n = _text(stored.status)
    job = -1 if stored.job_id is None else stored.job_id
    head = _STORED.pack(
        _STORED.size - 4 + status_n, STORED, seq, stored.id, stored.duplicate, job, status_n
    )
    return head + status


def read_stored(data: memoryview) -> tuple[int, Stored]:
    _, _, seq, row_id, duplicate, job, status_n = _STORED.unpack_from(data)
    status = bytes(data[_STORED.size : _STORED.size + status_n]).decode()
    return seq, Stored(row_id, bool(duplicate), status, None if job < 0 else job)


def failed_frame(seq: int, error: str) -> bytes:
    text, n = _text(error)
    return _FAILED.pack(_FAILED.size - 4 + n, FAILED, seq, n) + text


def read_failed(data: memoryview) -> tuple[int, str]:
    _, _, seq, n = _FAILED.unpack_from(data)
    return seq, bytes(data[_FAILED.size : _FAILED.size + n]).decode("utf-8", "replace")


def batch_frame(count: int) -> bytes:
    return _BATCH.pack(_BATCH.size - 4, BATCH, count)


def read_batch(data: memoryview) -> int:
    count: int = _BATCH.unpack_from(data)[2]
    return count


class FrameReader:
    """Whole frames out of a byte stream read in pieces."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, memoryview]]:
        """Add `data`; every frame now whole, as (kind, the frame from its length on)."""
        buffer = self._buffer
        buffer += data
        frames: list[tuple[int, memoryview]] = []
        offset, end = 0, len(buffer)
        while end - offset >= 5:
            (size,) = _LENGTH.unpack_from(buffer, offset)
            if end - offset - 4 < size:
                break
            frame = bytes(buffer[offset : offset + 4 + size])
            frames.append((frame[4], memoryview(frame)))
            offset += 4 + size
        if offset:
            del buffer[:offset]
        return frames

    @property
    def waiting(self) -> int:
        """Bytes of a frame not yet whole."""
        return len(self._buffer)
