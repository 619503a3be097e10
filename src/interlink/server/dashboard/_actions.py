"""The buttons: every action the dashboard takes, each a POST that passed `_forms`' checks
(session, same origin, CSRF token, `write` scope) and then does what the API or the CLI
does for the same thing.

```
POST /connections/{c}/disable    [account]   switch_off, recorded as done by this key
POST /connections/{c}/enable     [account]   switch_on (and the held webhook deliveries queued)
POST /connections/{c}/connect    [account]   a connect ticket; the browser goes to its link
POST /pipelines/{p}/run                      enqueue_or_join (joins a queued run), as POST /jobs
POST /deliveries/{id}/replay                 replay(): a new webhook.process job
POST /conflicts/{id}/resolve     take        sync.resolve, as `interlink conflicts resolve`
```
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from interlink.config import ACCOUNT_NAME
from interlink.errors import (
    ConfigError,
    ConnectionDisabledError,
    InterlinkError,
    LeaseLostError,
    PipelineLockedError,
    WebhookError,
)
from interlink.jobs import enqueue_or_join
from interlink.oauth import ConnectFlows, open_catalog, switch_off
from interlink.server._context import Context, ServerContext
from interlink.server._errors import ApiProblem
from interlink.server._jobs import check_account
from interlink.server._models import MAX_ID
from interlink.sync import resolve
from interlink.webhooks import replay, switch_on_releasing

from ._errors import Refused
from ._forms import ActionForm, Posted
from ._overview import connectable
from ._render import page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _done(path: str, notice: str | None = None) -> Response:
    return RedirectResponse(f"{path}?notice={notice}" if notice else path, status_code=303)


def _by(form: Posted) -> str:
    """Who switched it, as the listing shows it: the key's id and name, never the key."""
    return f"dashboard: api key {form.viewer.key.id} ({form.viewer.key.name})"


def _connection(ctx: ServerContext, name: str, form: Posted) -> str:
    if name not in ctx.config.connections:
        raise Refused(404, "Not found", f"There is no connection {name!r}.", viewer=form.viewer)
    return name


def _account(form: Posted) -> str:
    account = form.get("account").strip()
    if account and not ACCOUNT_NAME.fullmatch(account):
        raise Refused(
            422,
            "Not an account",
            "An account name is letters, digits and _ . @ + -, starting with one.",
            viewer=form.viewer,
        )
    return account


@router.post("/connections/{connection}/disable")
def disable(ctx: Context, connection: str, form: ActionForm) -> Response:
    name = _connection(ctx, connection, form)
    reason = form.get("reason").strip() or None
    try:
        switch_off(ctx.config, ctx.store, name, _account(form), reason=reason, by=_by(form))
    except ConfigError as exc:
        raise Refused(409, "Not switched off", exc.message, viewer=form.viewer) from None
    return _done("/", "disabled")


@router.post("/connections/{connection}/enable")
def enable(ctx: Context, connection: str, form: ActionForm) -> Response:
    name = _connection(ctx, connection, form)
    try:
        switch_on_releasing(ctx.config, ctx.store, ctx.queue, name, _account(form))
    except ConfigError as exc:
        raise Refused(409, "Not switched on", exc.message, viewer=form.viewer) from None
    return _done("/", "enabled")


def _flows(request: Request) -> ConnectFlows:
    found = request.app.state.connect_flows
    assert isinstance(found, ConnectFlows)
    return found


@router.post("/connections/{connection}/connect")
def connect(request: Request, ctx: Context, connection: str, form: ActionForm) -> Response:
    """A ticket for this browser, then a page that sends it on to the ticket's link (a
    page rather than a redirect: the dashboard's forms may only post to this server, and
    browsers apply that to the redirects that follow a form too)."""
    name = _connection(ctx, connection, form)
    if not connectable(ctx.config, name):
        raise Refused(
            409,
            "Cannot connect here",
            f"Connection {name!r} is not an oauth2 connection whose redirect_uri is this "
            f"server's /connect/{name}/callback; use `interlink connect {name}`.",
            viewer=form.viewer,
        )
    try:
        ticket = _flows(request).issue(
            name, account=_account(form), created_by=f"dashboard:apikey:{form.viewer.key.id}"
        )
    except ConfigError as exc:
        raise Refused(409, "Cannot connect here", exc.message, viewer=form.viewer) from None
    assert ticket.url is not None  # connectable() checked the redirect URI
    return page(
        request,
        "connect.html",
        title=f"Connect {name}",
        viewer=form.viewer,
        connection=name,
        link=ticket.url,
    )


@router.post("/pipelines/{pipeline}/run")
def run_now(ctx: Context, pipeline: str, form: ActionForm) -> Response:
    settings = ctx.config.pipelines.get(pipeline)
    if settings is None:
        raise Refused(404, "Not found", f"There is no pipeline {pipeline!r}.", viewer=form.viewer)
    try:
        check_account(ctx, pipeline, settings, None)
    except ApiProblem as problem:
        raise Refused(409, "Cannot run now", problem.message, viewer=form.viewer) from None
    # A double click (or a second tab) joins the run queued a moment ago.
    job_id, _ = enqueue_or_join(ctx.store, ctx.queue, pipeline)
    return _done(f"/jobs/{job_id}")


@router.post("/deliveries/{delivery_id:int}/replay")
def replay_delivery(ctx: Context, delivery_id: int, form: ActionForm) -> Response:
    missing = Refused(
        404, "Not found", f"Webhook delivery {delivery_id} does not exist.", viewer=form.viewer
    )
    if not 1 <= delivery_id <= MAX_ID:
        raise missing
    try:
        replay(ctx.store, ctx.queue, delivery_id, config=ctx.config)
    except LookupError:
        raise missing from None
    except WebhookError as exc:
        raise Refused(409, "Not replayed", f"{exc}.", viewer=form.viewer) from None
    return _done(f"/deliveries/{delivery_id}", "replayed")


@router.post("/conflicts/{conflict_id:int}/resolve")
async def resolve_conflict(ctx: Context, conflict_id: int, form: ActionForm) -> Response:
    take = form.get("take")
    if take not in ("source", "target"):
        raise Refused(
            422, "Not resolved", "Choose the side that wins: source or target.", viewer=form.viewer
        )
    side: Literal["source", "target"] = "source" if take == "source" else "target"
    if not 1 <= conflict_id <= MAX_ID:
        raise Refused(
            404, "Not found", f"Conflict {conflict_id} does not exist.", viewer=form.viewer
        )
    try:
        async with open_catalog(ctx.config, ctx.store) as catalog:
            await resolve(ctx.config, ctx.store, catalog, conflict_id, side)
    except ConfigError as exc:
        raise Refused(409, "Not resolved", exc.message, viewer=form.viewer) from None
    except (ConnectionDisabledError, PipelineLockedError, LeaseLostError) as exc:
        # Disabled, or the pipeline running (or taking the lock over): try again later.
        raise Refused(409, "Not resolved", str(exc), viewer=form.viewer) from None
    except InterlinkError as exc:
        raise Refused(
            502, "Not resolved", f"The target API failed: {exc}", viewer=form.viewer
        ) from None
    return _done(f"/conflicts/{conflict_id}", "resolved")
