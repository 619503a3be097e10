"""`/webhooks/deliveries` and `/webhooks/rejections`: the webhook inbox, looked at and replayed.

Listings and one delivery need a `read` key; replays (POST) a `write` key, as the jobs
routes do. Every path here has a fixed word after `/webhooks/` (`deliveries`,
`rejections`), which no source may be named (`RESERVED_SOURCE_NAMES`): the receiving route
`POST /webhooks/{source}` never shadows them, and they never shadow it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from interlink.errors import WebhookError
from interlink.store import DeliveryFilter, get_delivery, list_deliveries, list_rejections
from interlink.webhooks import MAX_REPLAY, delivery_details, replay, replay_failed

from ._context import Context, known_query_only
from ._envelope import API_PREFIX, success
from ._errors import ApiProblem, not_found
from ._models import MAX_ID, NAME_PATTERN, Envelope, ErrorEnvelope, Page
from ._webhook_models import (
    DeliveriesReplayed,
    DeliveryDetails,
    DeliveryOut,
    DeliveryReplayed,
    DeliveryStatusName,
    RejectionOut,
)

__all__ = ["router"]

router = APIRouter(tags=["webhooks"], dependencies=[Depends(known_query_only)])

# The paths take `{delivery_id:int}` (digits only), so `/webhooks/deliveries/replay` is
# not also a delivery's path: its Allow header is POST alone, and `abc` is a 404.
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="A delivery's row id.")]
Source = Annotated[
    str | None,
    Query(max_length=100, pattern=NAME_PATTERN, description="Only this source's."),
]
# Any printable text: event types are names like `customer.updated` or `orders/create`.
_EVENT_TYPE_PATTERN = r"^[^\x00-\x1f\x7f]+$"


def _clamp(limit: int) -> int:
    return max(1, min(100, limit))


@router.get(
    "/webhooks/deliveries",
    response_model=Page[DeliveryOut],
    summary="Stored webhook deliveries, newest first",
    description="Without their bodies; `GET /webhooks/deliveries/{id}` has everything.",
)
def list_webhook_deliveries(
    request: Request,
    ctx: Context,
    source: Source = None,
    status: DeliveryStatusName | None = None,
    event_type: Annotated[str | None, Query(max_length=300, pattern=_EVENT_TYPE_PATTERN)] = None,
    limit: Annotated[int, Query(description="Page size, clamped to 1..100.")] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only deliveries with a smaller id.")
    ] = None,
) -> dict[str, object]:
    size = _clamp(limit)
    query = DeliveryFilter(
        source=source, status=status, event_type=event_type, limit=size + 1, before=before
    )
    found = list_deliveries(ctx.store.engine, query)
    page = found[:size]
    return success(
        request.scope,
        [delivery.to_dict() for delivery in page],
        limit=size,
        next_before=page[-1].id if len(found) > size and page else None,
    )


@router.get(
    "/webhooks/deliveries/{delivery_id:int}",
    response_model=Envelope[DeliveryDetails],
    summary="One delivery, with its headers and body",
)
def get_webhook_delivery(
    request: Request, ctx: Context, delivery_id: DeliveryId
) -> dict[str, object]:
    found = get_delivery(ctx.store.engine, delivery_id)
    if found is None:
        raise not_found(f"Webhook delivery {delivery_id}")
    return success(request.scope, delivery_details(found))


@router.post(
    "/webhooks/deliveries/{delivery_id:int}/replay",
    status_code=202,
    response_model=Envelope[DeliveryReplayed],
    responses={409: {"model": ErrorEnvelope, "description": "CONFLICT: being processed now"}},
    summary="Process a delivery again",
    description=(
        "Queues a new webhook.process job for the delivery and sets it `pending`, in one "
        "transaction; follow the job at `status_url`. Any status but `processing` may be "
        "replayed (409 while an attempt is under way)."
    ),
)
def replay_webhook_delivery(
    request: Request, response: Response, ctx: Context, delivery_id: DeliveryId
) -> dict[str, object]:
    try:
        replayed = replay(ctx.store, ctx.queue, delivery_id, config=ctx.config)
    except LookupError:
        raise not_found(f"Webhook delivery {delivery_id}") from None
    except WebhookError:
        raise ApiProblem(
            409,
            f"Webhook delivery {delivery_id} is being processed right now; replay it once "
            "that attempt has ended.",
            details=[{"field": "status", "issue": "processing"}],
        ) from None
    assert replayed.job_id is not None
    url = f"{API_PREFIX}/jobs/{replayed.job_id}"
    response.headers["Location"] = url
    data = {"delivery": replayed.to_dict(), "job_id": replayed.job_id, "status_url": url}
    return success(request.scope, data)


@router.post(
    "/webhooks/deliveries/replay",
    status_code=202,
    response_model=Envelope[DeliveriesReplayed],
    summary="Process every failed delivery again",
    description=(
        "Every `failed` (dead-lettered) delivery, of one `source` or of all, oldest first "
        f"and `limit` at most ({MAX_REPLAY} by default), each with a new job, in one "
        "transaction. `status=failed` is required: it is the only status replayed in bulk."
    ),
)
def replay_failed_webhook_deliveries(
    request: Request,
    ctx: Context,
    status: Annotated[Literal["failed"], Query(description="Must be `failed`.")],
    source: Source = None,
    limit: Annotated[int, Query(ge=1, le=MAX_REPLAY)] = MAX_REPLAY,
) -> dict[str, object]:
    ids = replay_failed(ctx.store, ctx.queue, source=source, limit=limit, config=ctx.config)
    return success(request.scope, {"replayed": ids, "count": len(ids)})


@router.get(
    "/webhooks/rejections",
    response_model=Envelope[list[RejectionOut]],
    summary="Refused deliveries, newest first",
    description=(
        "Deliveries refused for their signature (bad or missing signature, stale "
        "timestamp, malformed header, wrong API key): why, when and from where; never "
        "their bodies. Unknown sources (404) and bodies too large (413) are not logged."
    ),
)
def list_webhook_rejections(
    request: Request,
    ctx: Context,
    source: Source = None,
    limit: Annotated[int, Query(description="How many, clamped to 1..100.")] = 50,
) -> dict[str, object]:
    found = list_rejections(ctx.store.engine, source, limit=_clamp(limit))
    return success(request.scope, [rejection.to_dict() for rejection in found])
