"""The requests detection makes: a small budget of GETs, each answer kept whole."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from interlink.http import ApiClient, url_before_auth

from ._model import DetectionError

__all__ = ["NOT_JSON", "Answer", "Prober"]

NOT_JSON: Any = object()
"""The body of an answer that is not JSON."""


@dataclass(slots=True)
class Answer:
    """One response: its status, headers, URL (before auth) and parsed body."""

    status: int
    headers: httpx.Headers
    url: str
    body: Any
    text: str

    @property
    def content_type(self) -> str:
        kind: str = self.headers.get("content-type", "no Content-Type")
        return kind.split(";")[0]


class Prober:
    """Sends at most `budget` GETs through the connection's client (its auth, its retries,
    which honour `Retry-After`), and says so when the budget is spent."""

    def __init__(self, client: ApiClient, *, budget: int = 8) -> None:
        self.client = client
        self.budget = budget
        self.sent = 0

    @property
    def left(self) -> int:
        return self.budget - self.sent

    async def get(self, url: str, params: dict[str, Any] | None = None) -> Answer:
        if self.sent >= self.budget:
            raise DetectionError(f"detection used its {self.budget} requests without deciding")
        self.sent += 1
        response = await self.client.request(
            "GET", url, params=params or None, raise_for_status=False
        )
        try:
            body = orjson.loads(response.content) if response.content else NOT_JSON
        except orjson.JSONDecodeError:
            body = NOT_JSON
        text = response.content[:200].decode("utf-8", "replace")
        return Answer(
            status=response.status_code,
            headers=response.headers,
            url=str(url_before_auth(response.request)),
            body=body,
            text=self.client.redactor.text(text),
        )
