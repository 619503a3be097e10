"""`interlink sandbox`: serve the bundled stand-in third-party APIs in the foreground.

With `--webhook-url` (and `--webhook-secret`), the shop posts a signed event to that URL for
every customer, product or order it changes; `POST /shop/_webhooks` changes it later.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    records: Annotated[
        int, typer.Option(min=0, help="Customers (and products) in the sandbox.")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 42,
    token: Annotated[
        str | None,
        typer.Option(help="Require `Authorization: Bearer TOKEN` on the shop and GraphQL."),
    ] = "sandbox-token",
    rate: Annotated[
        float | None,
        typer.Option(help="Server rate limit of the shop and commerce, requests per second."),
    ] = 200.0,
    burst: Annotated[int, typer.Option(min=1, help="Server rate-limit burst.")] = 20,
    cache_pages: Annotated[
        bool,
        typer.Option(
            "--cache-pages",
            help="Serve the shop's list pages from a cache that any record change empties "
            "(for benchmarks: the server then costs little).",
        ),
    ] = False,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            help="Post a signed event here for every record the shop changes "
            "(e.g. http://127.0.0.1:8000/api/v1/webhooks/shop).",
        ),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            envvar="INTERLINK_SANDBOX_WEBHOOK_SECRET",
            help="The signing secret (whsec_<base64> for the standard scheme).",
            show_envvar=True,
        ),
    ] = None,
    webhook_scheme: Annotated[
        str,
        typer.Option(help="How to sign: standard, hmac, stripe, github or shopify."),
    ] = "standard",
    webhook_event: Annotated[
        list[str] | None,
        typer.Option(
            help="Send only this event type (customer.updated, or customer.*); repeatable.",
        ),
    ] = None,
) -> None:
    """Serve the sandbox APIs (shop, commerce, GraphQL, SOAP) on one port until Ctrl-C."""
    from interlink.sandbox import (
        InvalidWebhookTargetError,
        WebhookTarget,
        run_sandbox_suite,
        service_urls,
    )

    target: WebhookTarget | None = None
    if webhook_url is not None or webhook_secret is not None:
        if webhook_url is None or webhook_secret is None:
            typer.echo("--webhook-url and --webhook-secret go together", err=True)
            raise typer.Exit(2)
        try:
            target = WebhookTarget(
                webhook_url,
                secret=webhook_secret,
                scheme=webhook_scheme,  # type: ignore[arg-type]  # checked by WebhookTarget
                events=tuple(webhook_event) if webhook_event else None,
            )
        except InvalidWebhookTargetError as error:
            flags = {"events": "event"}
            reasons = [
                f"--webhook-{flags.get(name, name)}: {issue}" for name, issue in error.problems
            ]
            typer.echo("; ".join(reasons), err=True)
            raise typer.Exit(2) from None
    urls = service_urls(f"http://127.0.0.1:{port}")
    shop, commerce = urls["shop"], urls["commerce"]
    typer.echo(f"interlink sandbox on http://127.0.0.1:{port}  ({records} records, seed {seed})")
    typer.echo(f"  shop      {shop['url']}")
    typer.echo(f"            GET  {shop['customers']}?offset=0&limit=100  (also /pages, /cursor,")
    typer.echo("                 /link, /next-url, /wrapped; /{id}/orders; POST, PATCH)")
    typer.echo(f"            GET  {shop['products']}   GET  {shop['orders']}")
    if token:
        typer.echo(f"            auth: Authorization: Bearer {token}")
    typer.echo(f"  commerce  {commerce['url']}  (JSON:API {commerce['customers']})")
    typer.echo(f"            token URL: {commerce['token_url']}")
    typer.echo(
        f"            client id: {commerce['client_id']}  "
        f"client secret: {commerce['client_secret']}"
    )
    typer.echo(f"  graphql   {urls['graphql']['url']}  (POST)")
    typer.echo(f"  soap      {urls['soap']['url']}  WSDL: {urls['soap']['wsdl']}")
    typer.echo(f"  stats     {shop['stats']}  {commerce['stats']}  (POST .../_reset, .../_touch)")
    if rate:
        typer.echo(f"  rate limit: {rate:g}/s, burst {burst} (429 + Retry-After beyond it)")
    if cache_pages:
        typer.echo("  shop list pages are cached until a record changes")
    if target is not None:
        events = ", ".join(target.events) if target.events else "every change"
        typer.echo(f"  webhooks  {target.scheme} -> {target.url}  ({events})")
        typer.echo(f"            GET {shop['url']}/_webhooks for deliveries")
    typer.echo("Ctrl-C stops it.")
    try:
        run_sandbox_suite(
            port,
            records,
            seed,
            token=token or None,
            rate_limit=(rate, 1.0, burst) if rate else None,
            cache_pages=cache_pages,
            webhooks=target,
        )
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add the `sandbox` command to `app`."""
    app.command("sandbox")(sandbox)
