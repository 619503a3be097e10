"""The error the jobs API client adds for a missing job; it lives in interlink's one tree."""

from __future__ import annotations

from interlink.errors import JobNotFoundApiError

__all__ = ["JobNotFoundApiError"]
