"""`interlink run PIPELINE [--account A | --account '*']` for connected accounts (issue 13),
against the sandbox's OAuth2 provider and a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.sandbox import OAuthProvider, SandboxServer
from interlink.store import Store, disable
from tests.connected_accounts import CUSTOMERS, connect, project, provider_server, revoke, rows


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLINK_SECRET_KEY", Fernet.generate_key().decode())


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, SandboxServer]]:
    with provider_server() as running:
        yield running


def write_project(tmp_path: Path, url: str, **kwargs: Any) -> Path:
    path = tmp_path / "interlink.yaml"
    path.write_text(
        yaml.safe_dump(project(f"sqlite:///{tmp_path / 'interlink.db'}", url, **kwargs))
    )
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def open_store(path: Path) -> Store:
    return Store.open(f"sqlite:///{path.parent / 'interlink.db'}")


def test_every_account_runs_and_one_failing_fails_the_command(
    provider: tuple[OAuthProvider, SandboxServer], tmp_path: Path
) -> None:
    sandbox, server = provider
    path = write_project(tmp_path, server.url)
    store = open_store(path)
    try:
        gone = connect(store, sandbox, "acct_1001")
        connect(store, sandbox, "acct_1002")
        revoke(sandbox, gone)

        code, out, err = invoke("run", "customers", "-c", str(path))
        assert code == 1, (out, err)
        assert sandbox.stats.invalid_grants == 1, "acct_1001's refresh was really refused"
        lines = out.splitlines()
        assert max(len(line) for line in lines) <= 80, out
        assert "customers: 2 accounts, 1 failed" in out
        row = {line.split()[1]: line for line in lines if line.startswith("│ acct_")}
        assert "failed" in row["acct_1001"] and "succeeded" in row["acct_1002"]
        assert " 40 " in row["acct_1002"]
        assert "acct_1001:" in out and "invalid_grant" in out
        assert len(rows(store, "customers_acct_1002")) == CUSTOMERS["acct_1002"]

        # `runs` lists each account's run under NAME@ACCOUNT.
        code, out, _ = invoke("runs", "customers", "-c", str(path))
        assert code == 0
        assert "acct_1001" in out and "acct_1002" in out
    finally:
        store.close()


def test_one_account_from_the_command_line(
    provider: tuple[OAuthProvider, SandboxServer], tmp_path: Path
) -> None:
    sandbox, server = provider
    path = write_project(tmp_path, server.url)
    store = open_store(path)
    try:
        for account in CUSTOMERS:
            connect(store, sandbox, account)
        code, out, err = invoke("run", "customers", "--account", "acct_1002", "-c", str(path))
        assert code == 0, (out, err)
        assert "of customers for acct_1002: succeeded" in out
        assert len(rows(store, "customers_acct_1002")) == CUSTOMERS["acct_1002"]
        assert [r["pipeline"] for r in store.runs()] == ["customers@acct_1002"]

        code, out, err = invoke("run", "customers", "--account", "acct_9", "-c", str(path))
        assert code == 2
        assert "no connected account 'acct_9'" in err
        assert "connected: acct_1001, acct_1002" in err

        code, out, err = invoke("run", "customers", "--account", "no spaces", "-c", str(path))
        assert code == 2 and "expected an account name" in err
    finally:
        store.close()


def test_star_overrides_a_pipelines_own_account(
    provider: tuple[OAuthProvider, SandboxServer], tmp_path: Path
) -> None:
    sandbox, server = provider
    path = write_project(tmp_path, server.url, account="acct_1001")
    store = open_store(path)
    try:
        for account in CUSTOMERS:
            connect(store, sandbox, account)
        code, out, err = invoke("run", "customers", "-c", str(path))
        assert code == 0, (out, err)
        assert [r["pipeline"] for r in store.runs()] == ["customers@acct_1001"]

        code, out, err = invoke("run", "customers", "--account", "*", "-c", str(path))
        assert code == 0, (out, err)
        assert "customers: 2 accounts, 0 failed" in out
        assert len(rows(store, "customers_acct_1002")) == CUSTOMERS["acct_1002"]

        code, out, err = invoke("run", "customers", "--account", "*", "--id", "3", "-c", str(path))
        assert code == 2
    finally:
        store.close()


def test_a_switched_off_account_is_skipped_and_no_account_is_an_error(
    provider: tuple[OAuthProvider, SandboxServer], tmp_path: Path
) -> None:
    sandbox, server = provider
    path = write_project(tmp_path, server.url)
    store = open_store(path)
    try:
        code, out, err = invoke("run", "customers", "-c", str(path))
        assert code == 1
        assert "none is connected" in err and len(err.strip().splitlines()) == 1

        for account in CUSTOMERS:
            connect(store, sandbox, account)
        with store.transaction() as conn:
            disable(conn, "provider", "acct_1001", reason="customer left")
        code, out, err = invoke("run", "customers", "-c", str(path))
        assert code == 0, (out, err)
        assert "skipped" in out and "customer left" in out
        assert [r["pipeline"] for r in store.runs()] == ["customers@acct_1002"]
    finally:
        store.close()
