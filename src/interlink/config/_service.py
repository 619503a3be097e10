"""Models of the `jobs:` and `server:` sections of `interlink.yaml`.

```yaml
jobs:
  max_attempts: 5          # then the job is dead-lettered (status failed)
  retry_delay: 2s          # first retry; doubles each attempt, up to retry_max_delay
  lease: 30s               # a claimed job's lease; its worker renews it every lease / 3
  durability: normal       # normal | full (SQLite: survive a power loss too, slower)
server:
  rate_limits:
    "POST /jobs": 10/min
    default: 100/min
  max_body: 1MiB
```
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.networks import IPvAnyNetwork

from ._units import parse_duration, parse_size

__all__ = ["DEFAULT_RATE_LIMITS", "JobsConfig", "RouteLimit", "ServerConfig", "parse_rate"]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_RATE_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class RouteLimit(BaseModel):
    """`limit` requests per `period` seconds, both positive (the limiter divides by them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: Annotated[int, Field(ge=1, le=1_000_000_000)]
    period: Annotated[float, BeforeValidator(parse_duration), Field(gt=0, allow_inf_nan=False)]

    @property
    def per_second(self) -> float:
        return self.limit / self.period

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


def parse_rate(value: Any) -> Any:
    """`"10/min"`, `"100/m"`, `"5/s"`, `"1000/h"`, `"10/5min"` -> `{"limit": 10, "period": 60.0}`,
    which pydantic then checks into a RouteLimit."""
    if isinstance(value, RouteLimit | dict):
        return value
    if isinstance(value, str):
        match = _RATE.match(value)
        if match and int(match.group(1)) > 0:
            count = int(match.group(2) or 1)
            if count == 0:
                raise ValueError(
                    f"expected a period longer than 0, such as '10/5min'; got {value!r}"
                )
            return {"limit": int(match.group(1)), "period": count * _RATE_UNITS[match.group(3)]}
    raise ValueError(f"expected a rate such as '10/min', '100/m' or '5/s'; got {value!r}")


Rate = Annotated[RouteLimit, BeforeValidator(parse_rate)]

DEFAULT_RATE_LIMITS: dict[str, RouteLimit] = {
    "POST /jobs": RouteLimit(limit=10, period=60.0),
    "default": RouteLimit(limit=100, period=60.0),
}


class JobsConfig(BaseModel):
    """How the job queue retries, leases and commits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    """Attempts before a job is dead-lettered (status `failed`); crash re-runs count too."""
    retry_delay: Seconds = 2.0
    """Wait before the first retry; it doubles with each attempt (with full jitter)."""
    retry_max_delay: Seconds = 3600.0
    lease: Seconds = 30.0
    """How long a claimed job stays claimed without a heartbeat from its worker."""
    poll_interval: Seconds = 0.5
    """How often an idle worker looks for work (woken at once by jobs enqueued in-process)."""
    durability: Literal["normal", "full"] = "normal"
    """SQLite: `normal` keeps every acknowledged job through a killed process; `full` also
    through a power loss or OS crash, at a cost in throughput (docs/jobs.md)."""
    concurrency: Annotated[int, Field(ge=1, le=256)] = 4


class ServerConfig(BaseModel):
    """The HTTP API of `interlink serve`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limits: dict[str, Rate] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    """Per API key and route: `"POST /jobs": 10/min`; `default` covers every other route;
    `anonymous`, per client address, covers requests without a valid key."""
    max_body: Annotated[int, BeforeValidator(parse_size), Field(gt=0)] = 1024 * 1024
    """Larger request bodies are refused with 413 before they are parsed."""
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    """Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client;
    from any other peer the header is ignored (docs/security.md)."""

    @field_validator("rate_limits")
    @classmethod
    def _routes(cls, value: dict[str, RouteLimit]) -> dict[str, RouteLimit]:
        for route in value:
            if route in ("default", "anonymous"):
                continue
            method, _, path = route.partition(" ")
            if method not in ("GET", "POST", "PUT", "PATCH", "DELETE") or not path.startswith("/"):
                raise ValueError(
                    "rate limit keys are 'default', 'anonymous' or 'METHOD /path' such as "
                    f"'POST /jobs'; got {route!r}"
                )
        return {**DEFAULT_RATE_LIMITS, **value}
