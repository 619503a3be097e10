"""`interlink demo`: the main job, end to end against the bundled sandbox.

1. Starts the sandbox (shop, commerce) on a free port, rate limited, with a few faults.
2. Runs `examples/shop-to-commerce/`: customers from the shop into commerce (OAuth2 client
   credentials, JSON:API, matched by email, newest change wins) and orders into SQLite.
3. Changes a few records on both sides through the sandbox, as their users would.
4. Runs again and checks, against the sandbox's own data, that only those moved and that
   the two-sided change was settled by the newer edit.
5. Serves interlink's own API (receiver and worker) on another free port, points the shop's
   webhooks at it, changes one more customer without running anything, and checks that the
   shop's signed event was stored, processed, and carried the change into commerce.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlink.config import InterlinkConfig, WebhookSourceConfig
    from interlink.store import Delivery, Store
    from interlink.sync import Progress, RunResult

__all__ = ["DemoResult", "WebhookStep", "register", "run_demo"]

DEFAULT_PROJECT = Path("examples/shop-to-commerce/interlink.yaml")
TOKEN = "sandbox-token"
ONE_TICK = 1.05  # the sandboxes stamp changes to the second
WEBHOOK_SOURCE = "shop"
WEBHOOK_EVENT = "customer.updated"
WEBHOOK_CUSTOMER = 7  # not one of the customers edited between the runs
WEBHOOK_COMPANY = "Changed, sent by webhook"
WEBHOOK_WAIT = 20.0  # seconds for the event to be delivered and processed
_SETTLED = ("processed", "failed", "ignored", "held")


@dataclass
class Check:
    what: str
    expected: str
    found: str

    @property
    def ok(self) -> bool:
        return self.expected == self.found


@dataclass
class WebhookStep:
    """The webhook step: the change made, what the shop sent, and what interlink stored."""

    url: str
    """Where the shop posted its events (interlink's receiving route)."""
    change: str
    stats: dict[str, int]
    """The shop sender's counters (`GET /shop/_webhooks`): sent, retried, failed, ..."""
    deliveries: list[Delivery]
    """The stored deliveries of the change's events, oldest first: one per change the
    shop applied (two when the demo sent its PATCH again after a lost answer)."""
    waited: float
    """Seconds from the change until its deliveries were settled (or the wait ran out)."""


@dataclass
class DemoResult:
    """The runs the demo made and what it verified against the sandbox."""

    runs: list[RunResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    webhook: WebhookStep | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs) and all(check.ok for check in self.checks)


class _Sandbox:
    """The demo's hands on the sandbox: edits as each system's own users would make them."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        # The sandbox injects faults into everyone's requests, the demo's own edits too.
        self.http = httpx.Client(timeout=10)
        token = self._call(
            "POST",
            f"{url}/commerce/oauth2-token",
            data={"grant_type": "client_credentials"},
            auth=("commerce-client", "commerce-secret"),
        ).json()["access_token"]
        self.commerce_headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/vnd.api+json",
        }
        self.shop_headers = {"Authorization": f"Bearer {TOKEN}"}

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        import httpx

        for attempt in range(8):
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError:
                if attempt == 7:
                    raise
                time.sleep(0.1)
                continue
            if response.status_code < 500 and response.status_code != 429:
                response.raise_for_status()
                return response
            time.sleep(0.1 * (attempt + 1))
        response.raise_for_status()
        return response

    def shop_customer(self, id: int) -> dict[str, Any]:
        url = f"{self.url}/shop/customers/{id}"
        return dict(self._call("GET", url, headers=self.shop_headers).json())

    def edit_shop(self, id: int, **fields: Any) -> None:
        url = f"{self.url}/shop/customers/{id}"
        self._call("PATCH", url, json=fields, headers=self.shop_headers)

    def commerce_by_email(self, email: str) -> dict[str, Any]:
        response = self._call(
            "GET",
            f"{self.url}/commerce/api/customers",
            params={"filter[email]": email},
            headers=self.commerce_headers,
        )
        data = response.json()["data"]
        return dict(data[0]) if data else {}

    def edit_commerce(self, email: str, **attributes: Any) -> None:
        target = self.commerce_by_email(email)
        document = {"data": {"type": "customers", "id": target["id"], "attributes": attributes}}
        url = f"{self.url}/commerce/api/customers/{target['id']}"
        self._call("PATCH", url, json=document, headers=self.commerce_headers)

    def send_webhooks(self, url: str, source: WebhookSourceConfig, events: list[str]) -> None:
        """Point the shop's webhooks at `url`, signed as `source` verifies them."""
        from interlink.config import HmacWebhookConfig

        target: dict[str, Any] = {
            "url": url,
            "scheme": source.scheme,
            "secret": source.all_secrets[0].get_secret_value(),
            "events": events,
        }
        if isinstance(source, HmacWebhookConfig) and source.api_key is not None:
            target["api_key"] = source.api_key.get_secret_value()
        # The sandbox's admin routes take no token and are never faulted.
        self.http.post(f"{self.url}/shop/_webhooks", json=target).raise_for_status()

    def webhooks(self) -> dict[str, Any]:
        """The shop's webhook target (never its secret), counters and recent deliveries."""
        response = self.http.get(f"{self.url}/shop/_webhooks")
        response.raise_for_status()
        return dict(response.json())

    def stop_webhooks(self) -> None:
        self.http.delete(f"{self.url}/shop/_webhooks").raise_for_status()

    def close(self) -> None:
        self.http.close()


async def _run(config: Any, store: Any, name: str, progress: Progress | None) -> RunResult:
    from interlink.oauth import open_catalog
    from interlink.sync import run_pipeline

    async with open_catalog(config, store) as catalog:
        return await run_pipeline(config, name, store=store, catalog=catalog, progress=progress)


def _webhook_source(config: InterlinkConfig, project: Path) -> WebhookSourceConfig:
    """The project's `webhooks.shop`, which the demo's shop must be able to sign for."""
    from interlink.errors import ConfigError
    from interlink.sandbox import WEBHOOK_SCHEMES

    source = config.webhooks.get(WEBHOOK_SOURCE)
    if source is None or not source.enabled:
        raise ConfigError(
            f"the demo needs an enabled webhook source named {WEBHOOK_SOURCE!r} (the shop "
            f"sends {WEBHOOK_EVENT} to it)",
            file=str(project),
            key="webhooks",
        )
    if source.scheme not in WEBHOOK_SCHEMES:
        raise ConfigError(
            f"the demo's shop signs with {', '.join(WEBHOOK_SCHEMES)}; got {source.scheme!r}",
            file=str(project),
            key=f"webhooks.{WEBHOOK_SOURCE}.scheme",
        )
    return source


def _webhook_step(
    config: InterlinkConfig,
    store: Store,
    sandbox: _Sandbox,
    company: Callable[[dict[str, Any]], str],
    note: Callable[[str], None],
) -> tuple[WebhookStep, list[Check]]:
    """Serve interlink's API with its worker, let the shop send it one change, wait for
    the delivery to be processed, and check the change landed in commerce."""
    from interlink.sandbox import SandboxServer
    from interlink.server import create_app
    from interlink.store import DeliveryFilter, list_deliveries

    source = config.webhooks[WEBHOOK_SOURCE]
    customer = sandbox.shop_customer(WEBHOOK_CUSTOMER)
    # The app's lifespan runs the worker; leaving the block stops uvicorn, then the
    # worker (a bounded wait), then the inbox's writer, and closes the app's queue.
    with SandboxServer(create_app(config, store=store, worker=True)) as api:
        url = f"{api.url}/api/v1/webhooks/{WEBHOOK_SOURCE}"
        sandbox.send_webhooks(url, source, [WEBHOOK_EVENT])
        try:
            note(f"interlink's API at {api.url}: the shop sends {WEBHOOK_EVENT} there")
            change = f"shop: customer {WEBHOOK_CUSTOMER} renamed its company, no run started"
            note(f"  {change}")
            started = time.monotonic()
            sandbox.edit_shop(WEBHOOK_CUSTOMER, company=WEBHOOK_COMPANY)
            deadline = started + WEBHOOK_WAIT
            while True:
                shop = sandbox.webhooks()
                events = [d for d in shop["recent"] if d["record_id"] == WEBHOOK_CUSTOMER]
                ids = {d["id"] for d in events}
                found = list_deliveries(store.engine, DeliveryFilter(source=WEBHOOK_SOURCE))
                deliveries = sorted((d for d in found if d.delivery_id in ids), key=lambda d: d.id)
                # Settled: the shop has nothing pending for this customer, and each event
                # it got a 2xx for is stored and has reached a final status.
                sent = {d["id"] for d in events if d["status"] == "sent"}
                stored = {d.delivery_id for d in deliveries if d.status in _SETTLED}
                if events and all(d["status"] != "pending" for d in events) and sent <= stored:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            waited = time.monotonic() - started
        finally:
            sandbox.stop_webhooks()
    step = WebhookStep(url, change, dict(shop["stats"]), deliveries, waited)
    # One event per change the shop applied: usually one, two or more when a PATCH's
    # answer was lost and the demo sent it again. Each must be stored and processed (the
    # record import is idempotent, so the later ones rewrite the same values).
    processed = sum(d.status == "processed" for d in deliveries)
    if not deliveries:
        outcome = f"nothing stored in {WEBHOOK_WAIT:.0f} s"
    elif processed == len(deliveries) == len(events):
        outcome = "processed"
    else:
        outcome = f"{processed} of {len(events)} processed"
    checks = [
        Check("webhook delivery stored and processed", "processed", outcome),
        Check(
            f"customer {WEBHOOK_CUSTOMER} (by webhook) in commerce",
            WEBHOOK_COMPANY,
            company(customer),
        ),
    ]
    return step, checks


def run_demo(
    project: Path,
    *,
    records: int,
    seed: int,
    faults: bool,
    progress: Any = None,
    say: Any = None,
) -> DemoResult:
    """Serve the sandbox, run the project twice around a few edits, verify the outcome;
    then serve interlink's API and verify a change the shop sends by webhook."""
    from interlink.config import load_config
    from interlink.errors import ConfigError
    from interlink.sandbox import FaultConfig, SandboxServer, create_sandbox_app
    from interlink.store import Store

    def note(text: str) -> None:
        if say is not None:
            say(text)

    fault_config = (
        FaultConfig(
            server_error_rate=0.01,
            unavailable_rate=0.002,
            drop_rate=0.005,
            lost_response_rate=0.005,
            seed=seed,
        )
        if faults
        else None
    )
    overlap = records // 10
    app = create_sandbox_app(
        records=records,
        seed=seed,
        token=TOKEN,
        rate_limit=(200.0, 1.0, 20),
        faults=fault_config,
        commerce_records=overlap * 2,
        commerce_overlap=overlap,
    )
    result = DemoResult()
    started = time.perf_counter()
    with SandboxServer(app) as server:
        env = {**os.environ, "SANDBOX_URL": server.url}
        env.setdefault("INTERLINK_DATABASE_URL", "sqlite:///.interlink/demo.db")
        config = load_config(project, env=env)
        for needed in ("customers", "orders"):
            if needed not in config.pipelines:
                raise ConfigError(
                    f"the demo needs a pipeline named {needed!r}",
                    file=str(project),
                    key="pipelines",
                )
        _webhook_source(config, project)
        if config.database.backend == "sqlite":
            # A fresh sandbox every time: the demo's state starts fresh with it.
            database = Path(config.database.url.split("///", 1)[1])
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
        store = Store.open(config.database)
        sandbox = _Sandbox(server.url)
        try:
            note(
                f"sandbox at {server.url}: {records:,} shop customers, {overlap * 2} in commerce"
                f" ({overlap} with the same emails)"
            )
            for name in ("customers", "orders"):
                result.runs.append(asyncio.run(_run(config, store, name, progress)))

            # Edits, as each system's own users would make them.
            a, b, c, d = (sandbox.shop_customer(i) for i in (3, 4, 5, 6))
            sandbox.edit_shop(3, company="Renamed in the shop")
            result.changes.append("shop: customer 3 renamed its company")
            sandbox.edit_commerce(b["email"], city="Changed in commerce")
            result.changes.append("commerce: customer 4 changed its city")
            sandbox.edit_shop(5, company="Shop edit, older")
            time.sleep(ONE_TICK)
            sandbox.edit_commerce(c["email"], company="Commerce edit, newer")
            result.changes.append("both: customer 5 changed in the shop, then in commerce")
            sandbox.edit_commerce(d["email"], company="Commerce edit, older")
            time.sleep(ONE_TICK)
            sandbox.edit_shop(6, company="Shop edit, newer")
            result.changes.append("both: customer 6 changed in commerce, then in the shop")
            for change in result.changes:
                note(f"  {change}")

            result.runs.append(asyncio.run(_run(config, store, "customers", progress)))

            def company(customer: dict[str, Any]) -> str:
                found = sandbox.commerce_by_email(customer["email"])
                return str(found.get("attributes", {}).get("company"))

            def city(customer: dict[str, Any]) -> str:
                found = sandbox.commerce_by_email(customer["email"])
                return str(found.get("attributes", {}).get("city"))

            second = result.runs[-1]
            result.checks = [
                # 3 and 6 go over; 5 stays (commerce's edit is newer); 4 changed only in
                # commerce, so the shop has nothing new to send.
                Check("second run: records written", "2", str(second.counts["updated"])),
                Check("second run: kept by newest_wins", "1", str(second.counts["skipped"])),
                Check("second run: records created", "0", str(second.counts["created"])),
                Check("customer 3 (shop edit) in commerce", "Renamed in the shop", company(a)),
                Check("customer 4 (commerce edit) kept", "Changed in commerce", city(b)),
                Check("customer 5 (commerce newer) kept", "Commerce edit, newer", company(c)),
                Check("customer 6 (shop newer) won", "Shop edit, newer", company(d)),
            ]

            # A change that travels by webhook: no run, the shop calls interlink.
            result.webhook, checks = _webhook_step(config, store, sandbox, company, note)
            result.checks.extend(checks)
        finally:
            sandbox.close()
            store.close()
    result.elapsed = time.perf_counter() - started
    return result


def demo(
    config: Annotated[
        Path, typer.Option("--config", "-c", metavar="FILE", help="The demo project.")
    ] = DEFAULT_PROJECT,
    records: Annotated[int, typer.Option(min=20, help="Customers in the shop.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the data and the faults.")] = 7,
    faults: Annotated[bool, typer.Option(help="Inject 500s, 503s and drops.")] = True,
) -> None:
    """Start the sandbox APIs and sync them with interlink: the main job, end to end."""
    from interlink.cli import _render, _render_progress

    progress = _render_progress.RunsProgress()
    with progress:
        result = run_demo(
            config,
            records=records,
            seed=seed,
            faults=faults,
            progress=progress.update,
            say=progress.say,
        )
    _render.show_demo(result)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `demo` command to `app`."""
    app.command("demo")(demo)
