"""Opening a database made by an older (or newer) release: SQLite is upgraded in place and
keeps every row; PostgreSQL is refused until `interlink db upgrade`, then works."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.errors import SchemaOutdatedError
from interlink.store import Store, create_engine, list_api_keys, verify_api_key
from interlink.store._migrate import HEAD, VERSION_TABLE
from interlink.store._schema import runs, schema_changes, state
from tests.jobs.procrastinate_schema import fresh_schema
from tests.store import old_database
from tests.store.schema_shape import shape


def write_config(folder: Path, url: str) -> Path:
    path = folder / "interlink.yaml"
    path.write_text(f"database: '{url}'\n")
    return path


def version(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(VERSION_TABLE):
                return []
            return list(conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    finally:
        engine.dispose()


def make_old(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Build the previous release's database at `url`; what it holds."""
    engine = create_engine(url)
    try:
        old_database.build(engine)
        return old_database.snapshot(engine)
    finally:
        engine.dispose()


def assert_nothing_lost(store: Store, before: dict[str, list[tuple[object, ...]]]) -> None:
    assert old_database.snapshot(store.engine) == before
    with store.engine.connect() as conn:
        added = conn.execute(
            sa.select(runs.c.id, runs.c.deleted, runs.c.warnings, runs.c.trial).order_by(runs.c.id)
        ).all()
        assert [tuple(row) for row in added] == [(1, 0, None, False), (2, 0, None, False)]
        added = conn.execute(
            sa.select(
                state.c.pipeline, state.c.fingerprint, state.c.full_read, state.c.staged
            ).order_by(state.c.pipeline)
        ).all()
        assert [tuple(row) for row in added] == [
            ("customers", None, False, False),
            ("orders", None, False, False),
        ]
        assert conn.execute(sa.select(schema_changes.c.previous_type)).scalars().all() == [None]
    # And through the store's own API.
    customers = store.load_state("customers")
    assert customers.cursor == "2024-05-01T10:00:00Z"
    assert customers.checkpoint == {"page": 3, "next": "/customers?page=3"}
    assert customers.pending_cursor == "2024-05-02T08:30:00Z" and customers.interrupted
    assert store.load_state("orders").cursor == {"id": 1234}
    assert [run["status"] for run in store.runs("customers")] == ["running", "succeeded"]
    assert [key.name for key in list_api_keys(store.engine)] == ["ci"]
    key = verify_api_key(store.engine, old_database.SECRET)
    assert key is not None and key.scope == "write"


def head_shape(url: str) -> dict[str, object]:
    engine = create_engine(url)
    try:
        return shape(engine)
    finally:
        engine.dispose()


# -- SQLite: upgraded on open ------------------------------------------------------------------


@pytest.mark.parametrize("stamped", [False, True], ids=["unversioned", "stamped-0001"])
def test_opening_an_old_sqlite_database_upgrades_it_and_keeps_every_row(tmp_path, stamped):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    before = make_old(url)
    if stamped:  # as `alembic stamp 0001` would have left it
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL)")
            conn.exec_driver_sql(f"INSERT INTO {VERSION_TABLE} VALUES ('0001')")
        engine.dispose()

    store = Store.open(url)
    try:
        assert_nothing_lost(store, before)
    finally:
        store.close()
    assert version(url) == [HEAD]
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    Store.open(fresh).close()
    if not stamped:  # (a hand-made version table has no primary key: only that differs)
        assert head_shape(url) == head_shape(fresh)
    else:
        upgraded, created = head_shape(url), head_shape(fresh)
        upgraded.pop(VERSION_TABLE), created.pop(VERSION_TABLE)
        assert upgraded == created


def test_the_cli_works_on_an_old_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    make_old(url)
    config = write_config(tmp_path, url)
    result = CliRunner().invoke(app, ["runs", "-c", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "customers" in result.output and "succeeded" in result.output
    status = CliRunner().invoke(app, ["db", "status", "-c", str(config)])
    assert status.exit_code == 0, status.output
    assert f"current   {HEAD}" in status.output and "up to date" in status.output


def test_an_old_sqlite_database_shows_as_outdated_until_it_is_opened(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    make_old(url)
    config = write_config(tmp_path, url)
    status = CliRunner().invoke(app, ["db", "status", "-c", str(config)])
    assert status.exit_code == 0, status.output
    assert "current   0001 (tables made before interlink versioned its schema)" in status.output
    assert f"head      {HEAD}" in status.output and "outdated" in status.output
    assert version(url) == []  # status changes nothing
    upgraded = CliRunner().invoke(app, ["db", "upgrade", "-c", str(config)])
    assert upgraded.exit_code == 0, upgraded.output
    assert "from revision 0001 (tables made before" in upgraded.output
    assert version(url) == [HEAD]
    again = CliRunner().invoke(app, ["db", "upgrade", "-c", str(config)])
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_a_sqlite_database_from_a_newer_release_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Store.open(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {VERSION_TABLE} SET version_num = '0042'")
    engine.dispose()
    with pytest.raises(SchemaOutdatedError) as refused:
        Store.open(url)
    message = str(refused.value)
    assert "revision 0042" in message and "newer than this release" in message
    assert f"needs {HEAD}" in message and str(tmp_path / "new.db") in message
    config = write_config(tmp_path, url)
    result = CliRunner().invoke(app, ["db", "upgrade", "-c", str(config)])
    assert result.exit_code == 2 and "newer than this release" in result.stderr
    assert version(url) == ["0042"]


# -- PostgreSQL: refused until `interlink db upgrade` -----------------------------------------


@pytest.fixture
def schema_url(postgres_url: str) -> Iterator[str]:
    with fresh_schema(postgres_url, "test_upgrade") as url:
        yield url


@pytest.mark.postgres
def test_an_old_postgresql_database_is_refused_until_db_upgrade(tmp_path, schema_url):
    before = make_old(schema_url)
    # (The test server trusts local connections: the password is only there to be hidden.)
    with_password = sa.make_url(schema_url).set(password="s3cret-pw")
    with pytest.raises(SchemaOutdatedError) as refused:
        Store.open(with_password.render_as_string(hide_password=False))
    message = str(refused.value)
    assert "\n" not in message
    assert "revision 0001" in message and f"needs {HEAD}" in message
    assert "`interlink db upgrade`" in message
    assert "postgresql://postgres@127.0.0.1" in message and "schema test_upgrade_" in message
    assert "s3cret-pw" not in message and "***" not in message
    assert version(schema_url) == []  # refusing changed nothing

    config = write_config(tmp_path, schema_url)
    runner = CliRunner()
    refused_run = runner.invoke(app, ["runs", "-c", str(config)])
    assert refused_run.exit_code == 2
    assert "`interlink db upgrade`" in refused_run.stderr and "revision 0001" in refused_run.stderr
    status = runner.invoke(app, ["db", "status", "-c", str(config)])
    assert status.exit_code == 0 and "outdated: run `interlink db upgrade`" in status.output

    upgraded = runner.invoke(app, ["db", "upgrade", "-c", str(config)])
    assert upgraded.exit_code == 0, upgraded.output
    assert "upgraded interlink's tables from revision 0001" in upgraded.output
    assert f"to {HEAD}" in upgraded.output
    assert version(schema_url) == [HEAD]

    store = Store.open(schema_url)
    try:
        assert_nothing_lost(store, before)
        # The sequences carried on: a new run gets the next id.
        counters = ("pages", "read", "created", "updated", "unchanged", "failed", "skipped")
        new_run = sa.insert(runs).values(
            pipeline="orders",
            status="running",
            started_at=1.0,
            full_refresh=False,
            dry_run=False,
            resumed=False,
            errors=[],
            **dict.fromkeys(counters, 0),
        )
        with store.transaction() as conn:
            new_id = conn.execute(new_run.returning(runs.c.id)).scalar_one()
        assert new_id == 3
    finally:
        store.close()
    ran = runner.invoke(app, ["runs", "-c", str(config)], env={"COLUMNS": "200"})
    assert ran.exit_code == 0, ran.output


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_created_at_the_head_on_open(schema_url):
    Store.open(schema_url).close()
    assert version(schema_url) == [HEAD]
    Store.open(schema_url).close()  # and opens again without a word


@pytest.mark.postgres
def test_a_postgresql_database_from_a_newer_release_is_refused(tmp_path, schema_url):
    Store.open(schema_url).close()
    engine = create_engine(schema_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0042'"))
    engine.dispose()
    with pytest.raises(SchemaOutdatedError, match="revision 0042, newer than this release"):
        Store.open(schema_url)
    config = write_config(tmp_path, schema_url)
    result = CliRunner().invoke(app, ["db", "upgrade", "-c", str(config)])
    assert result.exit_code == 2 and "newer than this release" in result.stderr


# -- opening stays cheap ----------------------------------------------------------------------

_OPEN_TWICE = """
import sys
from interlink.store import Store
Store.open(sys.argv[1]).close()   # creates the tables
Store.open(sys.argv[1]).close()   # finds them at the head
assert "alembic" not in sys.modules, "opening loaded Alembic"
"""


def test_opening_a_new_or_current_database_never_loads_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    subprocess.run([sys.executable, "-c", _OPEN_TWICE, url], check=True)
