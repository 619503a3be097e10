"""`interlink bindings list|forget`: a target record deleted at the target fails every
update of its source record (the 404) until its binding is forgotten; then the
`interlink run --id` line forget prints creates it again. Forgetting holds the pipeline's
lock, keeps pending creates unless asked, says which keys had no binding, and refuses
what has no bindings (a table pipeline, every account at once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.sandbox import SandboxServer, create_sandbox_app
from interlink.store import (
    BINDINGS_HOLDER,
    PENDING,
    Binding,
    Store,
    load_bindings,
    save_bindings,
    save_pending,
)
from tests.jobs.procrastinate_schema import fresh_schema

CONFIG = """
database: {db}
connections:
  shop:
    base_url: {url}/shop
    auth: {{type: bearer, token: sandbox-token}}
  commerce:
    base_url: {url}/commerce
    auth:
      type: oauth2_client_credentials
      token_url: oauth2-token
      client_id: commerce-client
      client_secret: commerce-secret
resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: 100}}
      incremental: {{field: updated_at, param: updated_since}}
  commerce:
    customers:
      path: /api/customers
      format: jsonapi
      paginate: {{type: next_url, next_path: links.next}}
pipelines:
  to_commerce:
    source: shop.customers
    destination: commerce.customers
    fields: {{email: email, company: company, first_name: first_name}}
  to_table:
    source: shop.customers
    destination: {{sql: customers}}
"""


def _commerce_token(url: str) -> str:
    answer = httpx.post(
        f"{url}/commerce/oauth2-token",
        data={"grant_type": "client_credentials"},
        auth=("commerce-client", "commerce-secret"),
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def test_a_deleted_target_record_comes_back_once_its_binding_is_forgotten(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    database = f"sqlite:///{tmp_path / 'state.db'}"
    with SandboxServer(create_sandbox_app(records=12, commerce_records=0)) as server:
        config = tmp_path / "interlink.yaml"
        config.write_text(CONFIG.format(db=database, url=server.url))
        cfg = ["-c", str(config)]
        first = runner.invoke(app, ["run", "to_commerce", *cfg])
        assert first.exit_code == 0, first.output

        listed = runner.invoke(app, ["bindings", "list", "to_commerce", *cfg], terminal_width=80)
        assert listed.exit_code == 0, listed.output
        assert "Bindings of to_commerce" in listed.output and "bound" in listed.output
        one = runner.invoke(app, ["bindings", "list", "to_commerce", "--key", "5", *cfg])
        assert one.exit_code == 0
        bound = _binding(database, "5")
        assert bound is not None and bound.target_key in one.output
        none = runner.invoke(app, ["bindings", "list", "to_commerce", "--key", "99", *cfg])
        assert none.exit_code == 1 and "No binding for: 99" in none.output

        # The target record is deleted at the target; source records 5, then 7, change.
        token = _commerce_token(server.url)
        httpx.delete(
            f"{server.url}/commerce/api/customers/{bound.target_key}",
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
        for key, company in (("5", "Changed At The Source"), ("7", "Seven")):
            httpx.patch(
                f"{server.url}/shop/customers/{key}",
                json={"company": company},
                headers={"Authorization": "Bearer sandbox-token"},
            ).raise_for_status()
        failing = runner.invoke(app, ["run", "to_commerce", *cfg])
        assert failing.exit_code == 1, failing.output  # the 404 on 5

        refused = runner.invoke(app, ["bindings", "forget", "to_commerce", "5", *cfg], input="n\n")
        assert refused.exit_code == 1 and "Forget 1 binding of to_commerce?" in refused.output
        assert _binding(database, "5") is not None
        forgot = runner.invoke(app, ["bindings", "forget", "to_commerce", "5", "99", "--yes", *cfg])
        assert "Forgot 1 binding of to_commerce: 5." in forgot.output, forgot.output
        assert "interlink run to_commerce --id 5" in forgot.output
        assert "No binding for: 99" in forgot.output
        assert forgot.exit_code == 1  # a key without a binding is worth the exit code
        assert _binding(database, "5") is None

        # The line forget printed sends 5 now, whatever the incremental cursor says.
        again = runner.invoke(app, ["run", "to_commerce", "--id", "5", *cfg])
        assert again.exit_code == 0, again.output
        rebound = _binding(database, "5")
        assert rebound is not None and rebound.target_key not in (PENDING, bound.target_key)
        made = httpx.get(
            f"{server.url}/commerce/api/customers/{rebound.target_key}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 200
        assert made.json()["data"]["attributes"]["company"] == "Changed At The Source"


def _binding(database: str, key: str) -> Binding | None:
    store = Store.open(database)
    try:
        return load_bindings(store.engine, "to_commerce", [key]).get(key)
    finally:
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    with fresh_schema(postgres_url, "test_bindings") as url:
        yield url


def test_pending_creates_are_kept_unless_asked_and_the_lock_is_respected(
    tmp_path: Path, database: str
) -> None:
    runner = CliRunner()
    config = tmp_path / "interlink.yaml"
    config.write_text(CONFIG.format(db=database, url="http://127.0.0.1:9"))
    cfg = ["-c", str(config)]
    store = Store.open(database)
    try:
        with store.transaction() as conn:
            save_bindings(conn, "to_commerce", [Binding("1", "c-1", "v1", "t1")])
        save_pending(store.engine, "to_commerce", [("2", "v2", {"email": "two@example.com"})])
        # A run holds the pipeline: nothing may change its bindings meanwhile.
        store.take_lock("to_commerce", -7)
        locked = runner.invoke(app, ["bindings", "forget", "to_commerce", "1", "--yes", *cfg])
        assert locked.exit_code != 0
        assert "cannot be changed now" in locked.output, locked.output
        store.release_lock("to_commerce", -7)

        kept = runner.invoke(app, ["bindings", "forget", "to_commerce", "1", "2", "--yes", *cfg])
        assert "Forgot 1 binding of to_commerce: 1." in kept.output, kept.output
        assert "Kept pending creates" in kept.output and ": 2." in kept.output
        assert kept.exit_code == 1
        listed = runner.invoke(app, ["bindings", "list", "to_commerce", *cfg], terminal_width=80)
        assert "pending create" in listed.output and "two@example.com" not in listed.output

        both = runner.invoke(
            app, ["bindings", "forget", "to_commerce", "2", "--pending", "--yes", *cfg]
        )
        assert both.exit_code == 0, both.output
        empty = runner.invoke(app, ["bindings", "list", "to_commerce", *cfg])
        assert "No bindings of to_commerce." in empty.output

        # While bindings are changed by hand, a run is refused with the reason.
        store.take_lock("to_commerce", BINDINGS_HOLDER)
        run = runner.invoke(app, ["run", "to_commerce", *cfg])
        assert run.exit_code != 0
        assert "bindings are being changed by hand" in run.output, run.output
        store.release_lock("to_commerce", BINDINGS_HOLDER)
    finally:
        store.close()

    for words in (["forget", "to_table", "1", "--yes"], ["list", "to_table"]):
        table = runner.invoke(app, ["bindings", *words, *cfg])
        assert table.exit_code == 2 and "only API pipelines keep bindings" in table.output
    unknown = runner.invoke(app, ["bindings", "list", "nope", *cfg])
    assert unknown.exit_code == 2 and "no pipeline 'nope'" in unknown.output
    empty = runner.invoke(app, ["bindings", "forget", "to_commerce", "", "--yes", *cfg])
    assert empty.exit_code == 2 and "got an empty one" in empty.output
    # Accounts: only an oauth2 source has them, and '*' is every one, not one.
    for account in ("acct_1", "*", "no spaces/x"):
        refused = runner.invoke(
            app, ["bindings", "list", "to_commerce", "--account", account, *cfg]
        )
        assert refused.exit_code == 2, refused.output
        assert "Traceback" not in refused.output
