"""Reading a delivery's untrusted parts (headers, signatures, timestamps, the body) without
ever failing with anything but a `SignatureError`.

Everything here is pure: no clock, no I/O. Each helper either returns a checked value or
raises a `SignatureError` with a fixed reason; it never quotes the input it refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import orjson

from interlink.errors import SignatureError

__all__ = [
    "MAX_HEADER_LENGTH",
    "MAX_SIGNATURES",
    "REJECT_REASONS",
    "Body",
    "HeaderInput",
    "HeaderView",
    "Verified",
    "any_match",
    "check_tolerance",
    "decode_base64",
    "decode_hex",
    "delivery_token",
    "hmac_digests",
    "malformed",
    "missing_header",
    "parse_timestamp",
    "rejected",
]

REJECT_REASONS: dict[str, int] = {
    "missing_signature": 401,
    "signature_mismatch": 401,
    "timestamp_out_of_tolerance": 401,
    "api_key_mismatch": 401,
    "missing_header": 400,
    "malformed_header": 400,
    "malformed_body": 400,
}
"""Every `SignatureError.reason` verification gives, with the status the route answers."""

MAX_HEADER_LENGTH = 8192
"""Longer values of the headers a scheme reads are refused before any parsing."""
MAX_SIGNATURES = 16
"""More signatures than this in one header are refused (each costs a comparison)."""
_MAX_TOKEN = 255

HeaderInput: TypeAlias = (
    Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]
)
"""A mapping (a dict, Starlette's `Headers`) or the raw `(name, value)` pairs of an ASGI
scope. Names are matched without regard to case; bytes are read as latin-1, as ASGI does."""

_TIMESTAMP = re.compile(r"(?:0|[1-9][0-9]{0,11})")
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# Delivery ids and event types from headers: visible ASCII, no spaces.
_TOKEN = re.compile(r"[\x21-\x7e]{1,255}")


def rejected(reason: str, message: str) -> SignatureError:
    """A `SignatureError` for one of `REJECT_REASONS`, with its status."""
    return SignatureError(message, reason=reason, status=REJECT_REASONS[reason])


def malformed(message: str) -> SignatureError:
    return rejected("malformed_header", message)


def missing_header(name: str) -> SignatureError:
    return rejected("missing_header", f"the {name} header is missing")


@dataclass(frozen=True, slots=True)
class Verified:
    """A delivery whose signature checked out: what the inbox stores about it.

    `delivery_id` is the sender's id for the delivery (the same on every retry), or
    `sha256:<hex of the body>` when the scheme has none; the inbox deduplicates on it per
    source. `timestamp` is the signed Unix time, for schemes that sign one. `headers` are the
    headers verification read (lower-case names), without any API key.
    """

    scheme: str
    delivery_id: str
    event_type: str | None
    timestamp: int | None = None
    headers: dict[str, str] = field(default_factory=dict, hash=False)


class HeaderView:
    """The request headers, looked up by lower-case name.

    A header a scheme reads must appear once and be at most `MAX_HEADER_LENGTH` long;
    surrounding spaces are dropped. Every header read is remembered for `Verified.headers`.
    """

    __slots__ = ("_repeated", "_values", "read")

    def __init__(self, headers: HeaderInput) -> None:
        pairs: Iterable[tuple[Any, Any]]
        if isinstance(headers, Mapping):
            pairs = headers.items()
        else:
            pairs = headers
        values: dict[str, str] = {}
        repeated: set[str] = set()
        if type(headers) is list:
            # An ASGI scope's pairs (the receiver's every delivery): decoded in one pass,
            # repeats found by count; anything but bytes goes the careful way below.
            try:
                values = {
                    name.decode("latin-1").lower(): value.decode("latin-1")
                    for name, value in headers
                }
            except (AttributeError, TypeError, ValueError):
                values = {}
            else:
                if len(values) == len(headers):
                    self._values = values
                    self._repeated = repeated
                    self.read: dict[str, str] = {}
                    return
                values = {}
        for raw_name, raw_value in pairs:
            name = _text(raw_name).lower()
            if name in values:
                repeated.add(name)
            values[name] = _text(raw_value)
        self._values = values
        self._repeated = repeated
        self.read = {}

    def get(self, name: str) -> str | None:
        """The value of `name`, or None when it is absent or empty."""
        key = name.lower()
        value = self._values.get(key)
        if value is None:
            return None
        if key in self._repeated:
            raise malformed(f"the {name} header appears more than once")
        if len(value) > MAX_HEADER_LENGTH:
            raise malformed(f"the {name} header is longer than {MAX_HEADER_LENGTH} characters")
        value = value.strip(" \t")
        if not value:
            return None
        self.read[key] = value
        return value

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise missing_header(name)
        return value

    def forget(self, name: str) -> None:
        """Keep `name` out of `read` (an API key is never stored)."""
        self.read.pop(name.lower(), None)


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if not isinstance(value, str):
        raise TypeError(f"header names and values are str or bytes; got {type(value).__name__}")
    return value


def parse_timestamp(text: str, header: str) -> int:
    """Unix seconds written as a plain integer (no sign, fraction or leading zero)."""
    if not _TIMESTAMP.fullmatch(text):
        raise malformed(f"the {header} timestamp is not whole Unix seconds")
    return int(text)


def check_tolerance(timestamp: int, now: float, tolerance: float) -> None:
    """Refuse a signed timestamp more than `tolerance` seconds before or after `now`."""
    skew = now - timestamp
    if abs(skew) > tolerance:
        where = "in the past" if skew > 0 else "in the future"
        raise rejected(
            "timestamp_out_of_tolerance",
            f"the signed timestamp is {abs(skew):.0f} s {where} (tolerance {tolerance:g} s)",
        )


def decode_hex(text: str, size: int, header: str) -> bytes:
    """A digest of `size` bytes written in hex (either case)."""
    if len(text) != 2 * size or not _HEX.fullmatch(text):
        raise malformed(f"the {header} signature is not {2 * size} hex digits")
    return bytes.fromhex(text)


def decode_base64(text: str, size: int, header: str) -> bytes:
    """A digest of `size` bytes in standard base64, padded or not, written canonically (so one
    digest has one spelling)."""
    if len(text) > 4 * ((size + 2) // 3) or not _BASE64.fullmatch(text):
        raise _not_base64(header, size)
    unpadded = text.rstrip("=")
    try:
        raw = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _not_base64(header, size) from None
    if len(raw) != size or base64.b64encode(raw).decode("ascii").rstrip("=") != unpadded:
        raise _not_base64(header, size)
    return raw


def _not_base64(header: str, size: int) -> SignatureError:
    return malformed(f"the {header} signature is not the base64 of a {size}-byte digest")


_JOIN_BELOW = 64 * 1024
"""Parts shorter than this together are joined and digested in one call (a copy costs less
than the calls it saves); a longer body is fed in parts, never copied."""


def hmac_digests(keys: Sequence[bytes], algorithm: str, parts: Sequence[bytes]) -> list[bytes]:
    """The HMAC of the concatenated `parts` under each key."""
    if sum(map(len, parts)) < _JOIN_BELOW:
        message = b"".join(parts)
        return [hmac.digest(key, message, algorithm) for key in keys]
    out = []
    for key in keys:
        mac = hmac.new(key, digestmod=algorithm)
        for part in parts:
            mac.update(part)
        out.append(mac.digest())
    return out


def any_match(expected: Sequence[bytes], given: Sequence[bytes]) -> bool:
    """Compare every expected digest with every given one, each in constant time."""
    found = False
    for mine in expected:
        for theirs in given:
            found |= hmac.compare_digest(mine, theirs)
    return found


def delivery_token(text: str, header: str) -> str:
    """A delivery id or event type from a header: visible ASCII, at most 255 characters."""
    if not _TOKEN.fullmatch(text):
        raise malformed(f"the {header} header is not 1 to {_MAX_TOKEN} visible ASCII characters")
    return text


class Body:
    """The raw body, and its JSON parsed at most once, only when a value is asked of it."""

    __slots__ = ("_data", "_parsed", "raw")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes):
            raise TypeError(f"the body is the raw bytes as received; got {type(raw).__name__}")
        self.raw = raw
        self._parsed = False
        self._data: Any = None

    def value_at(self, path: str) -> str | None:
        """The text (or whole number) at a dotted path, such as `data.object.id`; None when
        the body is not JSON, the path leads nowhere, or the value is not a short printable
        text."""
        if not self._parsed:
            self._parsed = True
            try:
                self._data = orjson.loads(self.raw)
            except orjson.JSONDecodeError:
                self._data = None
        node = self._data
        for part in path.split("."):
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and part.isascii() and part.isdigit():
                index = int(part)
                node = node[index] if index < len(node) else None
            else:
                return None
        if isinstance(node, int) and not isinstance(node, bool):
            node = str(node)
        if isinstance(node, str) and 0 < len(node) <= _MAX_TOKEN and node.isprintable():
            return node
        return None

    def sha256_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()
