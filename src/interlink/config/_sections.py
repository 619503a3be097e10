"""Sections of `interlink.yaml` whose models are built only when the file has them.

Pydantic builds a model's validator when its class is made: for the `webhooks:` sources
(seven kinds) and the `metrics:` that costs every process some 12 ms of start-up, a run
that finds nothing new included (issue 15), though most files have neither. So the root
model types these sections as plain mappings, and a `Section` validator checks a present
one with its real type, which it imports then. Errors keep their place: pydantic prefixes
them with the section's key as it did, and `_messages` follows `Section.annotation` to
name the keys a model takes.
"""

from __future__ import annotations

import importlib
from functools import cached_property
from typing import Any

from pydantic import TypeAdapter

__all__ = ["METRICS", "WEBHOOKS", "Section", "section_of"]


class Section:
    """The validator of one lazily checked section: `module.name` is its real type."""

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name

    def annotation(self) -> Any:
        """The section's real type (imports its module)."""
        module = importlib.import_module(self._module, __package__)
        return getattr(module, self._name)

    @cached_property
    def _adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.annotation())

    def __call__(self, value: dict[str, Any]) -> Any:
        if not value:
            return value
        return self._adapter.validate_python(value)

    def __repr__(self) -> str:
        return f"Section({self._module}.{self._name})"


WEBHOOKS = Section("._webhooks", "WebhookSources")
METRICS = Section("._metrics", "MetricSources")


def section_of(metadata: list[Any]) -> Section | None:
    """The `Section` among a field's metadata (its `AfterValidator`), if any."""
    for item in metadata:
        func = getattr(item, "func", None)
        if isinstance(func, Section):
            return func
    return None
