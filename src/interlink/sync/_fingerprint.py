"""What a source looked like when its cursor was stored: a fingerprint of its settings.

A cursor means "every record up to here is in the destination" only for the request that
made it. When the resource's path, params, headers, pagination, records or incremental
settings change (or those of its parent), or its connection's base URL, the stored cursor
and checkpoint belong to another read.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from interlink.config import InterlinkConfig

__all__ = ["source_fingerprint"]

# The settings that decide which records a read returns, and where a checkpoint points.
_FIELDS = (
    "type",
    "path",
    "method",
    "headers",
    "params",
    "body",
    "format",
    "query",
    "variables",
    "wsdl",
    "operation",
    "arguments",
    "service",
    "port",
    "records",
    "paginate",
    "incremental",
    "parent",
    "parent_key",
)


# Settings added since states were first stored that do not change which records a read
# returns, left out at their default so that a state stored before them still matches.
_LATER_DEFAULTS = {("paginate", "single", "total_path"): None}
# Settings that never change which records a read returns: left out whatever their value.
_NOT_RECORDS = {"incremental": ("lag",), "paginate": ("overlap",)}


def _settings(config: InterlinkConfig, name: str, seen: set[str]) -> dict[str, Any]:
    connection, resource, settings = config.resource(name)
    dumped = settings.model_dump(mode="json", by_alias=True)
    picked: dict[str, Any] = {key: dumped[key] for key in _FIELDS if key in dumped}
    for (section, kind, key), default in _LATER_DEFAULTS.items():
        part = picked.get(section)
        if isinstance(part, dict) and part.get("type") == kind and part.get(key) == default:
            picked[section] = {k: v for k, v in part.items() if k != key}
    for section, keys in _NOT_RECORDS.items():
        part = picked.get(section)
        if isinstance(part, dict):
            picked[section] = {k: v for k, v in part.items() if k not in keys}
    parent = dumped.get("parent")
    if parent:
        parent_name = parent if "." in parent else f"{connection}.{parent}"
        if parent_name not in seen:
            picked["parent"] = _settings(config, parent_name, seen | {name})
    return picked


def source_fingerprint(config: InterlinkConfig, source: str, *, incremental: bool) -> str:
    """A short hash of what decides the records of a read of `source` (`conn.resource`)."""
    settings = _settings(config, source, {source})
    connection = config.connections.get(source.partition(".")[0])
    # Another system or tenant behind the same resource name has other records; the
    # credentials are left out (a rotated key reads the same records).
    settings["base_url"] = connection.base_url if connection is not None else None
    settings["pipeline_incremental"] = incremental
    encoded = orjson.dumps(settings, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(encoded).hexdigest()[:16]
