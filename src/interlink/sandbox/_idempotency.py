"""`Idempotency-Key` handling for the sandbox's create endpoints.

The first answer to a POST with a key is stored with a fingerprint of the request body.
A retry with the same key and body gets that answer again, marked with
`Idempotent-Replayed: true`, and creates nothing; the same key with another body is a
client error (the caller answers 422). Handlers must not await between `find` and
`remember`, so concurrent retries cannot both create.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.responses import Response

__all__ = ["IdempotencyKeyReusedError", "IdempotencyStore", "StoredAnswer"]


class IdempotencyKeyReusedError(Exception):
    """The key was first used with a different request body."""


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    fingerprint: str
    status_code: int
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...]

    def replay(self) -> Response:
        return Response(
            self.body,
            status_code=self.status_code,
            media_type=self.media_type,
            headers={**dict(self.headers), "Idempotent-Replayed": "true"},
        )


def _fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IdempotencyStore:
    """The stored first answers of one app, by `Idempotency-Key`."""

    def __init__(self) -> None:
        self._answers: dict[str, StoredAnswer] = {}

    def find(self, key: str, body: bytes) -> StoredAnswer | None:
        """The stored answer for `key`; raises `IdempotencyKeyReusedError` on another body."""
        answer = self._answers.get(key)
        if answer is not None and answer.fingerprint != _fingerprint(body):
            raise IdempotencyKeyReusedError(key)
        return answer

    def remember(
        self,
        key: str,
        body: bytes,
        response: Response,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Store `response` (with a complete `body`) as the answer for `key`."""
        self._answers[key] = StoredAnswer(
            fingerprint=_fingerprint(body),
            status_code=response.status_code,
            body=bytes(response.body),
            media_type=response.media_type or "application/json",
            headers=tuple((headers or {}).items()),
        )

    def clear(self) -> None:
        self._answers.clear()
