"""Pipelines that act for connected accounts (issue 13): each account's run reads with
that account's tokens and keeps its own table, state, lock, run rows and bindings.

Against the sandbox's OAuth2 provider, whose accounts own different customers
(acct_1001: 25, acct_1002: 40), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import ConfigError, ConnectionDisabledError, SyncError
from interlink.oauth import Vault, VaultTokenSource, open_catalog
from interlink.sandbox import OAuthProvider, SandboxServer
from interlink.store import Store, disable, list_tokens, metadata
from interlink.sync import (
    AccountRun,
    RunResult,
    account_table,
    run_each_account,
    run_pipeline,
    split_key,
    state_key,
)
from interlink.types import OAuthToken
from tests.connected_accounts import (
    CUSTOMERS,
    app_state,
    commerce_server,
    config,
    connect,
    customers_of,
    provider_server,
    revoke,
    rows,
)
from tests.jobs.procrastinate_schema import fresh_schema


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLINK_SECRET_KEY", Fernet.generate_key().decode())


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, SandboxServer]]:
    with provider_server() as running:
        yield running


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'interlink.db'}"
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_accounts") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'interlink.db'}"


def opener(settings: InterlinkConfig, store: Store) -> Any:
    def catalogs(accounts: Mapping[str, str]) -> Catalog:
        return open_catalog(settings, store, accounts=accounts)

    return catalogs


def each(settings: InterlinkConfig, store: Store, name: str = "customers") -> list[AccountRun]:
    return asyncio.run(
        run_each_account(settings, name, store=store, catalogs=opener(settings, store))
    )


def one(settings: InterlinkConfig, store: Store, account: str | None, **kw: Any) -> RunResult:
    return asyncio.run(
        run_pipeline(
            settings,
            "customers",
            store=store,
            catalogs=opener(settings, store),
            account=account,
            **kw,
        )
    )


def test_each_account_table_holds_exactly_its_customers(
    provider: tuple[OAuthProvider, SandboxServer], database: str
) -> None:
    sandbox, server = provider
    settings = config(database, server.url)
    store = Store.open(settings.database)
    try:
        answers = {account: connect(store, sandbox, account) for account in CUSTOMERS}
        runs = each(settings, store)

        assert [(run.account, run.status) for run in runs] == [
            ("acct_1001", "succeeded"),
            ("acct_1002", "succeeded"),
        ]
        for account, count in CUSTOMERS.items():
            table = rows(store, f"customers_{account}")
            expected = customers_of(server.url, answers[account])
            assert len(table) == count == len(expected)
            assert {(r["id"], r["email"]) for r in table} == {
                (c["id"], c["email"]) for c in expected
            }
        # The two accounts own different people: no row is in both tables.
        emails = [{r["email"] for r in rows(store, f"customers_{a}")} for a in CUSTOMERS]
        assert not emails[0] & emails[1]

        # State, runs and lock are the account's own; the plain name keeps nothing.
        for account in CUSTOMERS:
            assert store.load_state(f"customers@{account}").cursor is not None
        assert store.load_state("customers").cursor is None
        listed = store.runs("customers")
        assert sorted(r["pipeline"] for r in listed) == [
            "customers@acct_1001",
            "customers@acct_1002",
        ]
        assert [r["pipeline"] for r in store.runs("customers@acct_1002")] == ["customers@acct_1002"]
        with store.engine.connect() as conn:
            held = conn.execute(sa.text("SELECT count(*) FROM interlink_locks")).scalar_one()
        assert held == 0
    finally:
        store.close()


def test_a_second_run_of_one_account_leaves_the_other_accounts_cursor(
    provider: tuple[OAuthProvider, SandboxServer], database: str
) -> None:
    sandbox, server = provider
    settings = config(database, server.url)
    store = Store.open(settings.database)
    try:
        for account in CUSTOMERS:
            connect(store, sandbox, account)
        each(settings, store)
        before = {a: store.load_state(f"customers@{a}") for a in CUSTOMERS}

        changed = app_state(server).customers["acct_1001"].update(3, {"company": "Renamed Ltd"})
        assert changed is not None
        again = one(settings, store, "acct_1001")

        assert again.ok and again.account == "acct_1001"
        assert again.counts["updated"] == 1 and again.counts["read"] < CUSTOMERS["acct_1001"]
        after = {a: store.load_state(f"customers@{a}") for a in CUSTOMERS}
        assert after["acct_1002"] == before["acct_1002"], "the other account's state moved"
        assert after["acct_1001"].run_id == again.run_id
        # The change is the read's newest; made in the second the read began, it may be
        # past the read's signpost, which the cursor stops before: what the read saw moved.
        assert after["acct_1001"].read_to != before["acct_1001"].read_to
        renamed = [r for r in rows(store, "customers_acct_1001") if r["id"] == 3]
        assert renamed[0]["company"] == "Renamed Ltd"
        assert all(r["company"] != "Renamed Ltd" for r in rows(store, "customers_acct_1002"))
    finally:
        store.close()


def test_one_account_needing_reauth_does_not_stop_the_others(
    provider: tuple[OAuthProvider, SandboxServer], sqlite_url: str
) -> None:
    sandbox, server = provider
    settings = config(sqlite_url, server.url)
    store = Store.open(settings.database)
    try:
        gone = connect(store, sandbox, "acct_1001")
        connect(store, sandbox, "acct_1002")
        revoke(sandbox, gone)  # the user of acct_1001 disconnected the app at the provider

        runs = each(settings, store)
        first, second = runs
        assert (first.account, first.status) == ("acct_1001", "failed")
        assert first.result is not None and first.result.run_id is not None
        assert "invalid_grant" in (first.message or "")
        assert sandbox.stats.invalid_grants == 1, "the refresh was really refused"
        assert (second.account, second.status) == ("acct_1002", "succeeded")
        assert len(rows(store, "customers_acct_1002")) == CUSTOMERS["acct_1002"]
        status = {t.account: t.status for t in list_tokens(store.engine, "provider")}
        assert status == {"acct_1001": "needs_reauth", "acct_1002": "active"}
        assert store.run(first.result.run_id)["status"] == "failed"  # type: ignore[index]

        # The next run fails it at once, without asking the provider again.
        again = each(settings, store)
        assert [r.status for r in again] == ["failed", "succeeded"]
        assert "must be connected again" in (again[0].message or "")
        assert sandbox.stats.invalid_grants == 1
    finally:
        store.close()


def test_a_switched_off_account_is_skipped_and_says_so(
    provider: tuple[OAuthProvider, SandboxServer], sqlite_url: str
) -> None:
    sandbox, server = provider
    settings = config(sqlite_url, server.url)
    store = Store.open(settings.database)
    try:
        for account in CUSTOMERS:
            connect(store, sandbox, account)
        with store.transaction() as conn:
            disable(conn, "provider", "acct_1002", reason="customer left", by="test")

        runs = each(settings, store)
        assert [(r.account, r.status) for r in runs] == [
            ("acct_1001", "succeeded"),
            ("acct_1002", "skipped"),
        ]
        assert runs[1].result is None and "customer left" in (runs[1].message or "")
        assert [r["pipeline"] for r in store.runs("customers")] == ["customers@acct_1001"]
        assert not sa.inspect(store.engine).has_table("customers_acct_1002")

        with pytest.raises(ConnectionDisabledError, match="acct_1002"):
            one(settings, store, "acct_1002")
        assert len(store.runs("customers")) == 1, "a switched-off account's run has no row"
    finally:
        store.close()


def test_a_switched_off_connection_runs_no_account(
    provider: tuple[OAuthProvider, SandboxServer], sqlite_url: str
) -> None:
    sandbox, server = provider
    settings = config(sqlite_url, server.url)
    store = Store.open(settings.database)
    try:
        connect(store, sandbox, "acct_1001")
        with store.transaction() as conn:
            disable(conn, "provider", reason="maintenance")
        with pytest.raises(ConnectionDisabledError, match="maintenance"):
            each(settings, store)
        assert store.runs() == []
    finally:
        store.close()


def test_no_connected_account_and_an_unknown_account_are_clear_errors(
    provider: tuple[OAuthProvider, SandboxServer], sqlite_url: str
) -> None:
    sandbox, server = provider
    settings = config(sqlite_url, server.url)
    store = Store.open(settings.database)
    try:
        with pytest.raises(SyncError, match="none is connected") as none:
            each(settings, store)
        assert "interlink connect provider --account" in str(none.value)

        connect(store, sandbox, "acct_1001")
        connect(store, sandbox, "acct_1002")
        with pytest.raises(ConfigError, match="no connected account 'acct_9'") as unknown:
            one(settings, store, "acct_9")
        assert "connected: acct_1001, acct_1002" in str(unknown.value)
        assert store.runs() == []
    finally:
        store.close()


def test_a_table_naming_the_account_needs_one(
    provider: tuple[OAuthProvider, SandboxServer], sqlite_url: str
) -> None:
    _, server = provider
    settings = config(sqlite_url, server.url, account=None)
    store = Store.open(settings.database)
    try:
        with pytest.raises(ConfigError) as refused:
            one(settings, store, None)
        assert refused.value.key == "pipelines.customers.destination"
        assert "{account}" in str(refused.value)
        # '*' from the command line for a table without {account}: refused as well.
        plain = config(sqlite_url, server.url, account=None, table="customers")
        with pytest.raises(ConfigError, match="must name") as star:
            asyncio.run(
                run_each_account(plain, "customers", store=store, catalogs=opener(plain, store))
            )
        assert star.value.key == "pipelines.customers.destination"
    finally:
        store.close()


def _store_token(store: Store, account: str) -> None:
    """A token for `account` as the vault keeps one (never sent anywhere in these tests)."""
    source = VaultTokenSource(store, Vault.open(store.engine), "provider", account=account)
    source.save_now(OAuthToken(access_token=f"at-{account}", refresh_token=f"rt-{account}"))


def test_two_accounts_sharing_a_table_are_refused_before_anything_runs(
    provider: tuple[OAuthProvider, SandboxServer], sqlite_url: str
) -> None:
    _, server = provider
    settings = config(sqlite_url, server.url)
    store = Store.open(settings.database)
    try:
        for account in ("Shop.One", "shop_one"):
            _store_token(store, account)
        with pytest.raises(ConfigError, match="both write the table 'customers_shop_one'"):
            each(settings, store)
        assert store.runs() == []
        assert app_state(server).stats.as_dict().get("requests", 0) == 0
    finally:
        store.close()


def test_account_table_names() -> None:
    def table(template: str, account: str, dialect: str = "sqlite") -> str:
        return account_table("customers", template, account, dialect=dialect)

    assert table("customers_{account}", "Acct.1001@Example.COM") == (
        "customers_acct_1001_example_com"
    )
    assert table("customers", "acct_1001") == "customers"
    assert table("{account}_customers", "shop-7") == "shop_7_customers"
    refused = {
        "no account": ("customers_{account}", ""),
        "reserved": ("{account}_x", "interlink"),
        "a digit first": ("{account}_x", "1001"),
    }
    for why, (template, account) in refused.items():
        with pytest.raises(ConfigError) as error:
            table(template, account)
        assert error.value.key == "pipelines.customers.destination", why
    long = "a" * 62
    assert table("t_{account}", long) == f"t_{long}"  # SQLite has no limit
    with pytest.raises(ConfigError, match="PostgreSQL keeps 63"):
        table("t_{account}", long, "postgresql")


def test_state_keys() -> None:
    assert state_key("customers", "") == "customers"
    assert state_key("customers", "acct_1001") == "customers@acct_1001"
    assert split_key("customers@jo@example.com") == ("customers", "jo@example.com")
    assert split_key("customers") == ("customers", "")
    long_a, long_b = "a" * 199 + "1", "a" * 199 + "2"
    keys = {state_key("customers", long_a), state_key("customers", long_b)}
    assert len(keys) == 2 and all(len(key) == 200 for key in keys)


def test_a_catalog_given_whole_cannot_run_an_account(
    provider: tuple[OAuthProvider, SandboxServer], sqlite_url: str
) -> None:
    """A catalog says nothing of whose tokens it holds: a run for an account opens its own."""
    sandbox, server = provider
    settings = config(sqlite_url, server.url, account="acct_1001")
    store = Store.open(settings.database)
    try:
        connect(store, sandbox, "acct_1001")

        async def through_a_catalog() -> RunResult:
            async with open_catalog(settings, store, accounts={"provider": "acct_1002"}) as cat:
                return await run_pipeline(settings, "customers", store=store, catalog=cat)

        with pytest.raises(TypeError, match="acct_1001"):
            asyncio.run(through_a_catalog())
        assert store.runs() == []
        # The pipeline's own account:, through catalogs=.
        result = one(settings, store, None)
        assert result.ok and result.account == "acct_1001"
        assert len(rows(store, "customers_acct_1001")) == CUSTOMERS["acct_1001"]
    finally:
        store.close()


def test_api_destination_bindings_are_per_account(
    provider: tuple[OAuthProvider, SandboxServer], sqlite_url: str
) -> None:
    """The accounts' customers have the same ids (1..25 and 1..40): with one set of
    bindings the second account would update the first one's targets instead of creating
    its own."""
    sandbox, server = provider
    with commerce_server() as commerce_url:
        settings = config(sqlite_url, server.url, commerce_url=commerce_url)
        store = Store.open(settings.database)
        try:
            for account in CUSTOMERS:
                connect(store, sandbox, account)
            runs = each(settings, store, "to_commerce")
            assert [r.status for r in runs] == ["succeeded", "succeeded"]
            assert [r.result.counts["created"] for r in runs if r.result] == [25, 40]
            bindings = metadata.tables["interlink_bindings"]
            with store.engine.connect() as conn:
                bound: dict[str, int] = dict(
                    conn.execute(
                        sa.select(bindings.c.pipeline, sa.func.count())
                        .group_by(bindings.c.pipeline)
                        .order_by(bindings.c.pipeline)
                    ).all()
                )
            assert bound == {"to_commerce@acct_1001": 25, "to_commerce@acct_1002": 40}
            with store.engine.connect() as conn:
                targets = conn.execute(
                    sa.select(sa.func.count(sa.distinct(bindings.c.target_key)))
                ).scalar_one()
            assert targets == 65, "each account's customers became target records of their own"

            # A full read again: every record is bound, in its own account's bindings.
            again = [
                asyncio.run(
                    run_pipeline(
                        settings,
                        "to_commerce",
                        store=store,
                        catalogs=opener(settings, store),
                        account=account,
                        full_refresh=True,
                    )
                )
                for account in CUSTOMERS
            ]
            assert [r.counts["unchanged"] for r in again] == [25, 40]
            assert [r.counts["created"] + r.counts["updated"] for r in again] == [0, 0]
        finally:
            store.close()
