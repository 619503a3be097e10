"""The webhook handler the dashboard tests name in `actions:`: it fails while told to."""

from __future__ import annotations

from typing import Any

from interlink.webhooks import WebhookEvent

FAILING = {"on": True}
"""Set "on" to False and the next attempt succeeds (a replay after a fix)."""


def flaky(event: WebhookEvent) -> dict[str, Any]:
    if FAILING["on"]:
        raise RuntimeError("the handler is told to fail")
    return {"order": event.payload.get("order", {}).get("id")}
