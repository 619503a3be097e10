"""What detection found: each decision with its evidence and how sure it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from interlink.errors import InterlinkError

__all__ = ["Confidence", "Detection", "DetectionError", "Finding"]

Confidence = Literal["sure", "likely", "guess"]


class DetectionError(InterlinkError):
    """The URL's answer cannot be turned into a resource; the message says why and what to do."""

    code = "DETECTION_FAILED"
    exit_code = 2


@dataclass(frozen=True, slots=True)
class Finding:
    """One decision: its value (None: nothing found), how sure, and why."""

    value: Any
    confidence: Confidence
    evidence: str


@dataclass(slots=True)
class Detection:
    """Everything `detect` decided about one list URL, ready to be written as YAML.

    `base_url` and `path` split the URL (its origin, and the rest); `params` are the URL's
    own query parameters that stay on every request (not the paging ones).
    """

    url: str
    base_url: str
    path: str
    params: dict[str, str]
    records: Finding
    """Where the records are: a dotted path, or None for the body itself (or JSON:API)."""
    format: Literal["json", "jsonapi"]
    paginate: Finding
    """A `paginate:` mapping, as interlink.yaml takes it."""
    primary_key: Finding
    incremental: Finding
    """`{"field": ..., "param": ...}` (param None: the API does not filter), or None."""
    sample: list[dict[str, Any]] = field(default_factory=list)
    """The records read, page 1 and page 2 (for `inspect`)."""
    requests: int = 0
    notes: list[str] = field(default_factory=list)
