"""`interlink sandbox`: serve the bundled stand-in third-party APIs in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    records: Annotated[int, typer.Option(min=0, help="Customers in the shop.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 42,
    token: Annotated[
        str | None, typer.Option(help="Require `Authorization: Bearer TOKEN`.")
    ] = "sandbox-token",
    rate: Annotated[
        float | None, typer.Option(help="Server rate limit, requests per second.")
    ] = 50.0,
    burst: Annotated[int, typer.Option(min=1, help="Server rate-limit burst.")] = 20,
) -> None:
    """Serve the shop sandbox API (customers, rate limits, faults) until Ctrl-C."""
    from interlink.sandbox import run_sandbox

    url = f"http://127.0.0.1:{port}"
    typer.echo(f"shop sandbox: {url}  ({records} customers, seed {seed})")
    typer.echo(f"  GET  {url}/customers?offset=0&limit=100")
    typer.echo(f"  GET  {url}/customers/1")
    typer.echo(f"  POST {url}/customers   (honours Idempotency-Key)")
    typer.echo(f"  GET  {url}/_stats      POST {url}/_reset")
    if token:
        typer.echo(f"  auth: Authorization: Bearer {token}")
    if rate:
        typer.echo(f"  rate limit: {rate:g}/s, burst {burst} (429 + Retry-After beyond it)")
    typer.echo("Ctrl-C stops it.")
    try:
        run_sandbox(
            port,
            records,
            seed,
            token=token or None,
            rate_limit=(rate, 1.0, burst) if rate else None,
        )
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add the `sandbox` command to `app`."""
    app.command("sandbox")(sandbox)
