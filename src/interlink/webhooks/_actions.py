"""Which action of a source's `actions:` an event type gets, and the event handlers see.

```python
found = match_action(source.actions, "customer.updated")
# ("customer.updated", action) for an exact name, else the longest matching "prefix*",
# else "*", else None
```
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from interlink.config import WebhookActionConfig
from interlink.errors import ConfigError

__all__ = ["WebhookEvent", "load_handler", "match_action", "value_at"]


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A stored delivery as a handler receives it.

    `payload` is the body parsed as JSON (None when it is not JSON); `body` the raw bytes
    as they were signed. `attempt` counts from 1: a handler runs at least once per delivery
    and may run again (after a crash, a retry or a replay), so make it idempotent: key your
    writes on `delivery_id` or on the ids in the payload, and upsert rather than insert.
    """

    id: int
    source: str
    delivery_id: str
    event_type: str | None
    received_at: float
    attempt: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    payload: Any = field(repr=False, default=None)

    @classmethod
    def parse(cls, **values: Any) -> WebhookEvent:
        body: bytes = values["body"]
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = None
        return cls(**values, payload=payload)


def match_action(
    actions: Mapping[str, WebhookActionConfig], event_type: str | None
) -> tuple[str, WebhookActionConfig] | None:
    """The action for `event_type`: its exact name, else the longest `prefix*` pattern it
    starts with, else `*`; None when nothing matches (the delivery is ignored)."""
    if event_type is not None:
        exact = actions.get(event_type)
        if exact is not None:
            return event_type, exact
        best: str | None = None
        for pattern in actions:
            if pattern == "*" or not pattern.endswith("*"):
                continue
            if event_type.startswith(pattern[:-1]) and (best is None or len(pattern) > len(best)):
                best = pattern
        if best is not None:
            return best, actions[best]
    anything = actions.get("*")
    return ("*", anything) if anything is not None else None


def value_at(payload: Any, path: str) -> Any:
    """The value at dotted `path` in parsed JSON (list items by index); None when absent."""
    found = payload
    for part in path.split("."):
        if isinstance(found, dict):
            found = found.get(part)
        elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
            found = found[int(part)]
        else:
            return None
        if found is None:
            return None
    return found


_HANDLERS: dict[str, Callable[..., Any]] = {}


def load_handler(path: str, *, where: str) -> Callable[..., Any]:
    """The function `module:function` names, imported once; ConfigError (naming `where`,
    the config key) when it cannot be found or is not callable."""
    found = _HANDLERS.get(path)
    if found is not None:
        return found
    module_name, _, name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}", key=where) from None
    handler: Any = getattr(module, name, None)
    if not callable(handler):
        raise ConfigError(f"{module_name!r} has no function {name!r}", key=where)
    _HANDLERS[path] = handler
    return handler  # type: ignore[no-any-return]
