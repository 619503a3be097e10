"""Handlers the dispatch tests name in `actions:` as `tests.webhooks.handlers:...`."""

from __future__ import annotations

from typing import Any

from interlink.webhooks import WebhookEvent

SEEN: list[WebhookEvent] = []


def remember(event: WebhookEvent) -> dict[str, Any]:
    SEEN.append(event)
    return {"order": event.payload["order"]["id"]}


async def remember_async(event: WebhookEvent) -> dict[str, Any]:
    SEEN.append(event)
    return {"order": event.payload["order"]["id"]}


def explode(event: WebhookEvent) -> None:
    SEEN.append(event)
    raise RuntimeError(f"the handler broke on attempt {event.attempt}")
