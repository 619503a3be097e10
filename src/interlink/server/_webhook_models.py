"""Pydantic models of the webhook deliveries routes' answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "DeliveriesReplayed",
    "DeliveryDetails",
    "DeliveryOut",
    "DeliveryReplayed",
    "DeliveryStatusName",
    "RejectionOut",
]

DeliveryStatusName = Literal["pending", "processing", "processed", "failed", "ignored", "held"]


class DeliveryOut(BaseModel):
    id: int = Field(description="The delivery's row id: what show and replay take.")
    source: str = Field(description="The `webhooks:` source it came to.")
    delivery_id: str = Field(
        description="The sender's id for it; without one, sha256:<body hex> (with "
        "#<row id> once the same body came again after the source's repeat_window)."
    )
    event_type: str | None
    status: DeliveryStatusName = Field(
        description="pending, processing, processed, failed (dead-lettered), ignored, or "
        "held (a connection it needs is switched off; processed once it is on)."
    )
    received_at: float = Field(description="Epoch seconds, as every time of a delivery.")
    attempts: int
    last_error: str | None
    job_id: int | None = Field(description="The webhook.process job that handles it.")
    result: dict[str, Any] | None = Field(
        description="What its action did: the run job it queued or joined, the record..."
    )
    processed_at: float | None


class DeliveryDetails(DeliveryOut):
    headers: dict[str, str] = Field(
        description="The headers verification read; credential- and signature-like "
        "values masked (***)."
    )
    body: str | None = Field(description="The raw body as text, when it is UTF-8.")
    body_base64: str | None = Field(description="The raw body in base64, when it is not.")


class DeliveryReplayed(BaseModel):
    delivery: DeliveryOut = Field(description="The delivery, pending again.")
    job_id: int = Field(description="The new webhook.process job.")
    status_url: str = Field(description="Where to follow that job (GET /jobs/{id}).")


class DeliveriesReplayed(BaseModel):
    replayed: list[int] = Field(description="The ids of the deliveries replayed, oldest first.")
    count: int


class RejectionOut(BaseModel):
    id: int
    source: str = Field(description="The source named in the URL (known or not).")
    reason: str = Field(description="signature_mismatch, malformed_header, ...")
    status: int = Field(description="The HTTP status answered (400, 401, 404, 413...).")
    message: str
    address: str | None = Field(description="The sender's address.")
    received_at: float
