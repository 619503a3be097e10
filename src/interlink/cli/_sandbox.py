"""`interlink sandbox`: serve the bundled stand-in third-party APIs in the foreground."""

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
) -> None:
    """Serve the sandbox APIs (shop, commerce, GraphQL, SOAP) on one port until Ctrl-C."""
    from interlink.sandbox import run_sandbox_suite, service_urls

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
    typer.echo("Ctrl-C stops it.")
    try:
        run_sandbox_suite(
            port,
            records,
            seed,
            token=token or None,
            rate_limit=(rate, 1.0, burst) if rate else None,
            cache_pages=cache_pages,
        )
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add the `sandbox` command to `app`."""
    app.command("sandbox")(sandbox)
