"""The tables `store/_schema.py` describes are exactly what the migrations build, on both
dialects: a change to _schema.py without a migration (or the reverse) fails here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from interlink.store import SCHEMA_VERSION, create_engine
from interlink.store._migrate import (
    HEAD,
    MIGRATIONS,
    REVISIONS,
    VERSION_TABLE,
    prepare_schema,
    run_migrations,
)
from tests.jobs.procrastinate_schema import fresh_schema
from tests.store.schema_shape import shape


def test_the_revisions_listed_in_code_are_the_migration_scripts():
    scripts = ScriptDirectory(str(MIGRATIONS))
    assert scripts.get_current_head() == HEAD == f"{SCHEMA_VERSION:04d}"
    walked = [script.revision for script in scripts.walk_revisions("base", "heads")]
    assert tuple(reversed(walked)) == REVISIONS


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def new_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], sa.Engine]]:
    """A factory of engines on new, empty databases of one dialect."""
    with ExitStack() as stack:
        made: list[sa.Engine] = []

        def factory() -> sa.Engine:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / f'db{len(made)}.sqlite'}"
            else:
                postgres_url = request.getfixturevalue("postgres_url")
                url = stack.enter_context(fresh_schema(postgres_url, "test_head"))
            engine = create_engine(url)
            made.append(engine)
            return engine

        yield factory
        for engine in made:
            engine.dispose()


def test_the_migrations_build_the_tables_metadata_describes(new_database):
    migrated, created = new_database(), new_database()
    with migrated.begin() as conn:
        run_migrations(conn)
    prepare_schema(created)  # an empty database is created from metadata, at the head

    expected = shape(created)
    assert VERSION_TABLE in expected and "interlink_jobs" in expected
    assert shape(migrated) == expected
    for engine in (migrated, created):
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all() == [
                (HEAD,)
            ]


def test_the_sqlite_queue_indexes_are_built_on_sqlite_only(new_database):
    engine = new_database()
    with engine.begin() as conn:
        run_migrations(conn)
    indexes = shape(engine)["interlink_jobs"]["indexes"]
    sqlite_only = {"ix_interlink_jobs_ready", "ix_interlink_jobs_running"}
    if engine.dialect.name == "sqlite":
        assert sqlite_only <= set(indexes)
        assert (
            "(priority DESC, id) WHERE status = 'queued'" in indexes["ix_interlink_jobs_ready"][2]
        )
    else:
        assert not sqlite_only & set(indexes)
    unique = indexes["ux_interlink_jobs_idempotency_key"]
    assert unique[1] is True and "WHERE" in unique[2] and "idempotency_key IS NOT NULL" in unique[2]


def test_the_migrations_go_down_to_nothing_and_up_again(new_database):
    engine = new_database()
    with engine.begin() as conn:
        run_migrations(conn)
    at_head = shape(engine)
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(shape(engine)) == {VERSION_TABLE}
    with engine.begin() as conn:
        run_migrations(conn)
    assert shape(engine) == at_head
