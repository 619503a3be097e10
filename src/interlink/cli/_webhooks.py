"""`interlink webhooks list | show ID | replay ID | replay --failed | rejected`.

The webhook inbox of the database in interlink.yaml, read and replayed directly (no
server needed): a replayed delivery is `pending` again with a new `webhook.process` job,
which the worker of `interlink serve` or `interlink worker` runs. Exit codes: 0 ok (also
when `replay --failed` finds nothing to replay); 2 for bad input: an unknown delivery id,
a delivery being processed right now, options that do not go together.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interlink.cli._options import ConfigOption, load_settings

if TYPE_CHECKING:
    from interlink.config import InterlinkConfig
    from interlink.jobs import Queue
    from interlink.store import Store

__all__ = ["register"]

webhooks_app = typer.Typer(
    help="Webhook deliveries interlink stored: list, show, replay; and the rejected ones.",
    no_args_is_help=True,
)

SourceOption = Annotated[
    str | None, typer.Option("--source", "-s", metavar="SOURCE", help="Only this source's.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(" ".join(message.split()), err=True)
    return typer.Exit(2)


@contextmanager
def _store(ctx: typer.Context, config: Any) -> Iterator[tuple[InterlinkConfig, Store]]:
    from interlink.store import Store

    settings = load_settings(ctx, config)
    store = Store.open(settings.database)
    try:
        yield settings, store
    finally:
        store.close()


@webhooks_app.command("list")
def list_(
    ctx: typer.Context,
    source: SourceOption = None,
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS", help="pending, processing, processed, failed, ignored or held."
        ),
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--event-type", metavar="TYPE", help="Only this event type.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, metavar="N", help="How many to show.")] = 20,
    before: Annotated[
        int | None, typer.Option(min=1, metavar="ID", help="Only deliveries older than ID.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List stored deliveries, newest first."""
    from interlink.store import DELIVERY_STATUSES, DeliveryFilter, list_deliveries

    if status is not None and status not in DELIVERY_STATUSES:
        raise _fail(f"--status: expected one of {', '.join(DELIVERY_STATUSES)}; got {status!r}")
    query = DeliveryFilter(
        source=source,
        status=status,  # type: ignore[arg-type]  # checked against DELIVERY_STATUSES above
        event_type=event_type,
        limit=limit + 1,
        before=before,
    )
    with _store(ctx, config) as (_, store):
        found = list_deliveries(store.engine, query)
    page = found[:limit]
    next_before = page[-1].id if len(found) > limit and page else None
    if as_json:
        data = {"items": [d.to_dict() for d in page], "next_before": next_before}
        typer.echo(json.dumps(data, indent=2))
        return
    from interlink.cli import _render_webhooks

    _render_webhooks.show_deliveries(page, next_before=next_before)


@webhooks_app.command("show")
def show(
    ctx: typer.Context,
    delivery_id: Annotated[int, typer.Argument(metavar="ID", help="The id `list` shows.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one delivery: status, attempts, last error, headers and body."""
    from interlink.store import get_delivery
    from interlink.webhooks import delivery_details

    with _store(ctx, config) as (_, store):
        found = get_delivery(store.engine, delivery_id)
    if found is None:
        raise _fail(f"no webhook delivery with id {delivery_id}; see interlink webhooks list")
    shown = delivery_details(found)
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    from interlink.cli import _render_webhooks

    _render_webhooks.show_delivery(shown)


@webhooks_app.command("replay")
def replay(
    ctx: typer.Context,
    delivery_id: Annotated[
        int | None, typer.Argument(metavar="ID", help="The delivery to process again.")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Every failed (dead-lettered) delivery instead.")
    ] = False,
    source: SourceOption = None,
    config: ConfigOption = None,
) -> None:
    """Process a delivery again, or every failed one.

    ID replays one delivery; --failed every failed (dead-lettered) one, of --source or of
    all. Each gets a new job, which the worker of `interlink serve` or `interlink worker`
    runs.
    """
    from interlink.errors import WebhookError
    from interlink.jobs import open_queue
    from interlink.webhooks import replay as replay_one

    if failed == (delivery_id is not None):
        raise _fail("give a delivery ID or --failed (one of the two)")
    if source is not None and not failed:
        raise _fail("--source goes with --failed")
    with _store(ctx, config) as (settings, store):
        queue = open_queue(settings, store)
        try:
            if delivery_id is None:
                _replay_failed(settings, store, queue, source)
                return
            try:
                delivery = replay_one(store, queue, delivery_id, config=settings)
            except LookupError as error:
                raise _fail(f"{error}; see interlink webhooks list") from None
            except WebhookError as error:
                raise _fail(str(error)) from None
        finally:
            queue.close()
    event = f" {delivery.event_type}" if delivery.event_type else ""
    typer.echo(
        f"Replayed webhook delivery {delivery.id} ({delivery.source}{event}): "
        f"pending, job {delivery.job_id}."
    )


def _replay_failed(
    settings: InterlinkConfig, store: Store, queue: Queue, source: str | None
) -> None:
    from interlink.webhooks import MAX_REPLAY, replay_failed

    of = f" of source {source!r}" if source else ""
    ids = replay_failed(store, queue, source=source, config=settings)
    if not ids:
        typer.echo(f"No failed webhook deliveries{of}: nothing to replay.")
        return
    shown = ", ".join(str(i) for i in ids[:20]) + (", ..." if len(ids) > 20 else "")
    typer.echo(f"Replayed {len(ids)} failed webhook deliveries{of}: {shown}.")
    if len(ids) == MAX_REPLAY:
        typer.echo(f"At most {MAX_REPLAY} at a time: run it again for the rest.")


@webhooks_app.command("rejected")
def rejected(
    ctx: typer.Context,
    source: SourceOption = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="How many to show.")
    ] = 20,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List deliveries refused before they were stored, newest first.

    A bad signature, a stale timestamp, an unknown source, a body too large: why, when and
    from where (never the body).
    """
    from interlink.store import list_rejections

    with _store(ctx, config) as (_, store):
        found = list_rejections(store.engine, source, limit=limit)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in found], indent=2))
        return
    from interlink.cli import _render_webhooks

    _render_webhooks.show_rejections(found)


def register(app: typer.Typer) -> None:
    """Add the `webhooks` command group to `app`."""
    app.add_typer(webhooks_app, name="webhooks")
