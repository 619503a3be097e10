"""One page of `GET /jobs`: the jobs, newest first, and the cursor to the next page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobsPage"]


@dataclass(frozen=True)
class JobsPage:
    """A page of jobs as `list_jobs` returns it.

    `next_before` is the `before=` to ask for the next (older) page with, None on the last
    page; `meta` is the envelope's `meta` as the server sent it. Iterating a page yields its
    jobs, and `len(page)` counts them.
    """

    items: list[dict[str, Any]]
    next_before: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_more(self) -> bool:
        return self.next_before is not None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
