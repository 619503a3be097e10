"""The versions an API pipeline binds records at (see sync/_api_sink.py's docstring).

A source record's version is its `timestamps.source` field, or a hash of its mapped
fields. A target record's is its `timestamps.target` field, or else a hash of the fields
interlink writes, prefixed `fields:` (CONTENT) so that the next run compares the target's
current values of the same fields in the same form.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from interlink.config import PipelineConfig
from interlink.connectors import Record

__all__ = ["CONTENT", "Versions", "fingerprint"]

NOT_FIELDS = ("id", "type", "relationships")
"""Members of a JSON:API record that are not written fields."""
CONTENT = "fields:"
"""Prefixes a version made of the written fields' values (see `ApiSink.version_after_write`)."""


def fingerprint(values: dict[str, Any]) -> str:
    """A short, stable hash of `values` (keys sorted)."""
    dumped = orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha1(dumped, usedforsecurity=False).hexdigest()[:20]


class Versions:
    """The versions of one pipeline's records: its `timestamps` and written `fields`."""

    def __init__(self, pipeline: PipelineConfig, fields: list[str] | None) -> None:
        self.stamps = pipeline.timestamps
        self.fields = fields

    def source(self, source: Record, mapped: Record) -> str:
        stamp = self.stamps.source
        if stamp and source.get(stamp) is not None:
            return str(source[stamp])
        return fingerprint(mapped)

    def of_target(self, target: Record | None) -> str | None:
        """The target's own version: its timestamp, or a hash of its written fields."""
        if not target:
            return None
        stamp = self.stamps.target
        if stamp:
            value = target.get(stamp)
            return None if value is None else str(value)
        keys = self.fields or [k for k in target if k not in NOT_FIELDS]
        return fingerprint({k: target.get(k) for k in keys})

    def written_keys(self, mapped: Record) -> list[str]:
        """The fields interlink writes: what a version made of field values covers."""
        return list(self.fields) if self.fields else [k for k in mapped if k not in NOT_FIELDS]

    def content(self, values: Record, keys: list[str]) -> str:
        return CONTENT + fingerprint({k: values.get(k) for k in keys})

    def now(self, target: Record, mapped: Record) -> str:
        """The target's version: its own, or its written fields' values when it has none."""
        version = self.of_target(target)
        return version if version is not None else self.content(target, self.written_keys(mapped))

    def current(self, target: Record | None, previous: str, mapped: Record) -> str | None:
        """The target's version now, in the form `previous` was saved in (None: unknown)."""
        if not target:
            return None
        if previous.startswith(CONTENT):
            return self.content(target, self.written_keys(mapped))
        return self.of_target(target)

    def answer(self, answer: Record, mapped: Record) -> str | None:
        """The version a create or update answer shows, None when it is not the record
        (no body, or not the timestamp or every written field)."""
        if not answer:
            return None
        if not self.stamps.target and not all(k in answer for k in self.written_keys(mapped)):
            return None
        return self.of_target(answer)
