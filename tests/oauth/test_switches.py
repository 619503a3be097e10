"""Switching connections and accounts off and on (issue 13, the registry): the switches
themselves on SQLite and PostgreSQL, and what "off" does to everything that goes through
a connection: `interlink run`, pipeline jobs and schedules (webhook deliveries are held:
tests/webhooks/test_held.py). Nothing is deleted, and "on" again picks up where things
were."""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interlink.config import InterlinkConfig
from interlink.errors import ConfigError
from interlink.jobs import JobFilter, Scheduler, open_queue, pipeline_job, run_worker
from interlink.oauth import (
    AccountNotConnectedError,
    UnknownConnectionError,
    Vault,
    describe_connections,
    new_key,
    switch_off,
    switch_on,
)
from interlink.sandbox import SandboxServer, create_shop_app
from interlink.store import (
    Store,
    list_switches,
    list_tokens,
    save_token,
)
from tests.jobs.procrastinate_schema import fresh_schema

TOKEN = "switch-shop-token"
T0 = calendar.timegm((2026, 12, 1, 10, 7, 30, 0, 0, 0))  # 10:07:30 UTC


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'switches.db'}"
        return
    # The vault (crm is an oauth2 connection) takes its key from the environment there.
    monkeypatch.setenv("INTERLINK_SECRET_KEY", new_key())
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_switches") as url:
        yield url


@pytest.fixture(scope="module")
def shop() -> Iterator[SandboxServer]:
    with SandboxServer(create_shop_app(records=120, seed=11, token=TOKEN)) as server:
        yield server


def make_config(database: str, shop_url: str = "http://127.0.0.1:9") -> InterlinkConfig:
    """`shop` (bearer) feeds a pipeline; `crm` (oauth2) has
    accounts, and a scheduled pipeline acts for one of them."""
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "jobs": {"retry_delay": 0.01, "retry_max_delay": 0.02, "poll_interval": 0.05},
            "connections": {
                "shop": {"base_url": shop_url, "auth": {"type": "bearer", "token": TOKEN}},
                "crm": {
                    "base_url": "http://127.0.0.1:9/api",
                    "auth": {
                        "type": "oauth2",
                        "token_url": "http://127.0.0.1:9/oauth/token",
                        "client_id": "crm-client",
                        "client_secret": "crm-secret",
                    },
                },
            },
            "resources": {
                "shop": {
                    "customers": {
                        "path": "/customers",
                        "records": "data",
                        "paginate": {"type": "offset", "page_size": 50},
                    }
                },
                "crm": {"contacts": {"path": "/contacts"}},
            },
            "pipelines": {
                "customers": {
                    "source": "shop.customers",
                    "destination": {"sql": "customers"},
                    "schedule": "*/15 * * * *",
                },
                "contacts_1": {
                    "source": "crm.contacts",
                    "destination": {"sql": "contacts_1"},
                    "account": "acct_1",
                    "schedule": "*/15 * * * *",
                },
                "contacts_2": {
                    "source": "crm.contacts",
                    "destination": {"sql": "contacts_2"},
                    "account": "acct_2",
                    "schedule": "*/15 * * * *",
                },
            },
        }
    )


def customers_read(url: str) -> int:
    """How many times the provider's customer list was asked for."""
    paths = httpx.get(f"{url}/_stats").json()["paths"]
    return sum(count for path, count in paths.items() if "customers" in path)


def store_token(store: Store, connection: str, account: str) -> None:
    vault = Vault.open(store.engine)
    ciphertext = vault.encrypt_json({"access_token": f"at-{account}", "refresh_token": None})
    with store.transaction() as conn:
        save_token(conn, connection, account, ciphertext, time.time() + 3600, expected_version=None)


Rig = tuple[InterlinkConfig, Store]


@pytest.fixture
def rig(database: str) -> Iterator[Rig]:
    config = make_config(database)
    store = Store.open(config.database)
    store_token(store, "crm", "acct_1")
    store_token(store, "crm", "acct_2")
    yield config, store
    store.close()


# -- the switches --------------------------------------------------------------------------


def test_switching_off_twice_keeps_the_first_reason_and_on_twice_says_so(rig: Rig) -> None:
    config, store = rig
    first = switch_off(config, store, "shop", reason="  rotating   keys ", by="cli")
    assert (first.enabled, first.changed) == (False, True)
    assert first.switch is not None and first.switch.reason == "rotating keys"
    again = switch_off(config, store, "shop", reason="something else", by="api key 3 (ops)")
    assert (again.enabled, again.changed) == (False, False)
    assert again.switch is not None and again.switch.reason == "rotating keys"
    assert again.switch.disabled_by == "cli"
    on = switch_on(config, store, "shop")
    assert (on.enabled, on.changed, on.switch) == (True, True, None)
    assert switch_on(config, store, "shop").changed is False
    assert list_switches(store.engine) == []


def test_an_account_is_switched_alone_and_stays_off_while_its_connection_is(rig: Rig) -> None:
    config, store = rig
    switch_off(config, store, "crm", "acct_1", reason="customer left", by="cli")
    [crm] = [c for c in describe_connections(config, store.engine) if c["name"] == "crm"]
    assert crm["enabled"] is True
    accounts = {a["account"]: a for a in crm["accounts"]}
    assert accounts["acct_1"]["enabled"] is False
    assert accounts["acct_1"]["disabled"]["reason"] == "customer left"
    assert accounts["acct_2"]["enabled"] is True

    switch_off(config, store, "crm", reason="provider outage", by="cli")
    on = switch_on(config, store, "crm", "acct_1")
    # The account's own switch is gone, the connection's still holds it.
    assert (on.changed, on.enabled) == (True, False)
    assert on.switch is not None and on.switch.reason == "provider outage"
    switch_on(config, store, "crm")
    [crm] = [c for c in describe_connections(config, store.engine) if c["name"] == "crm"]
    assert crm["enabled"] and all(a["enabled"] for a in crm["accounts"])
    # Nothing was deleted along the way.
    assert {t.account for t in list_tokens(store.engine, "crm")} == {"acct_1", "acct_2"}


def test_unknown_connections_and_accounts_are_refused_with_what_exists(rig: Rig) -> None:
    config, store = rig
    with pytest.raises(UnknownConnectionError, match=r"'nope'.*connections: shop, crm"):
        switch_off(config, store, "nope")
    with pytest.raises(AccountNotConnectedError, match=r"'acct_9'.*connected: 'acct_1', 'acct_2'"):
        switch_off(config, store, "crm", "acct_9")
    with pytest.raises(AccountNotConnectedError, match="uses bearer auth: it has no accounts"):
        switch_off(config, store, "shop", "acct_1")
    with pytest.raises(AccountNotConnectedError, match="expected an account name"):
        switch_on(config, store, "crm", "no spaces")
    assert list_switches(store.engine) == []


def test_a_webhook_source_must_name_a_connection_that_exists() -> None:
    from interlink.config import parse_config

    text = (
        "connections:\n  shop:\n    base_url: http://127.0.0.1:9\n"
        "webhooks:\n  hooks:\n    scheme: github\n    secret: s\n    connection: shpo\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, file="interlink.yaml")
    # The line of the key itself.
    assert str(raised.value).startswith(
        "interlink.yaml:8: webhooks.hooks.connection: no connection named 'shpo'"
    ), raised.value


# -- interlink run ---------------------------------------------------------------------------


def test_interlink_run_fails_with_the_reason_while_off_and_runs_once_on(tmp_path: Path) -> None:
    from interlink.sandbox import OAuthProvider, create_oauth_provider_app
    from tests.oauth.test_registry import listed
    from tests.oauth.test_restart import CLIENT, project, run

    provider = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(provider)) as server:
        config = project(tmp_path, server.url, provider.grant(CLIENT, "acct_1001")["refresh_token"])
        assert run(config).returncode == 0
        from typer.testing import CliRunner

        from interlink.cli.main import app

        off = CliRunner().invoke(
            app, ["connections", "disable", "provider", "--reason", "audit", "-c", str(config)]
        )
        assert off.exit_code == 0, off.output
        read_before = customers_read(server.url)
        refused = run(config)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert refused.stderr.strip().splitlines()[-1] == (
            "connection 'provider' is disabled (audit); `interlink connections enable "
            "provider` switches it on again"
        )
        # The refused run asked the provider for nothing, and the token was kept.
        assert customers_read(server.url) == read_before
        assert "(default)" in listed(config)
        on = CliRunner().invoke(app, ["connections", "enable", "provider", "-c", str(config)])
        assert on.exit_code == 0, on.output
        again = run(config)
        assert again.returncode == 0, again.stdout + again.stderr


# -- jobs ------------------------------------------------------------------------------------


def test_a_queued_pipeline_job_fails_at_once_without_retry(
    database: str, shop: SandboxServer
) -> None:
    config = make_config(database, shop.url)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        switch_off(config, store, "shop", reason="maintenance", by="cli")
        job = queue.enqueue(pipeline_job("customers"))
        assert job.max_attempts > 1
        asyncio.run(run_worker(config, store, queue, burst=True))
        failed = queue.get(job.id)
        assert failed is not None and (failed.status, failed.attempts) == ("failed", 1), failed
        assert "connection 'shop' is disabled (maintenance)" in (failed.error or "")

        switch_on(config, store, "shop")
        second = queue.enqueue(pipeline_job("customers"))
        asyncio.run(run_worker(config, store, queue, burst=True))
        done = queue.get(second.id)
        assert done is not None and done.status == "completed", done
        assert done.result is not None and done.result["counts"]["read"] == 120
    finally:
        queue.close()
        store.close()


# -- schedules -------------------------------------------------------------------------------


def test_schedules_of_a_switched_off_connection_or_account_are_passed_over(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    config, store = rig
    queue = open_queue(config, store)
    try:
        scheduler = Scheduler(config, store, queue)
        assert scheduler.tick(T0) == []  # registers the three schedules
        switch_off(config, store, "shop", reason="maintenance", by="cli")
        switch_off(config, store, "crm", "acct_1", by="cli")
        caplog.set_level(logging.INFO, logger="interlink.jobs")
        caplog.clear()
        due = T0 + 8 * 60  # 10:15:30
        [job] = scheduler.tick(due)
        assert job.pipeline == "contacts_2"  # its account is on
        skipped = [r.getMessage() for r in caplog.records if "switched off" in r.getMessage()]
        assert skipped == [
            "schedules not enqueued, switched off: customers (connection shop: maintenance); "
            "contacts_1 (connection crm, account acct_1)"
        ]
        caplog.clear()
        # Ticks that are not due say nothing, and the passed-over tick is not made up.
        assert scheduler.tick(due + 30) == []
        switch_on(config, store, "shop")
        switch_on(config, store, "crm", "acct_1")
        assert scheduler.tick(due + 60) == []
        assert not [r for r in caplog.records if "switched off" in r.getMessage()]
        queue.cancel(job.id)
        enqueued = scheduler.tick(T0 + 23 * 60)  # 10:30:30: the next tick
        assert sorted(j.pipeline or "" for j in enqueued) == [
            "contacts_1",
            "contacts_2",
            "customers",
        ]
        assert len(queue.list(JobFilter(pipeline="customers"))) == 1
    finally:
        queue.close()
