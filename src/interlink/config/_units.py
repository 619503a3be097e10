"""Parsers for the units users write in `interlink.yaml`: durations, sizes and rates."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_duration", "parse_size"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}


def parse_duration(value: Any) -> Any:
    """Accept seconds as a number or a string such as `500ms`, `1s`, `1m`, `1h`."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(
                f"expected a duration such as 30, 1.5, '500ms', '1m' or '1h'; got {value!r}"
            )
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


def parse_size(value: Any) -> Any:
    """Accept bytes as a number or a string such as `64KiB` or `1MiB`."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"expected a size such as 65536, '64KiB' or '1MiB'; got {value!r}")
        unit = match.group(2).lower() if match.group(2) else None
        return int(match.group(1)) * _SIZE_UNITS[unit]
    return value
