"""PgPool, the run path's transactions on PostgreSQL, against a real server: a connection
kept between transactions (and pinged after a long idle, replaced when the ping fails), a
rollback on error, savepoints, a connection the server dropped never reused, and the
table lookups (`has_table`, the writer's columns) answering as SQLAlchemy's inspector
does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from interlink.store import _pg_pool as pool_module, create_engine, has_table
from interlink.store._pg_pool import PgConnection, PgPool
from interlink.store._pg_url import PgUrl
from interlink.sync._table_columns import read_columns
from tests.jobs.procrastinate_schema import fresh_schema
from tests.sync.test_column_types import _sqlalchemy_kind


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    with fresh_schema(postgres_url, "test_pgpool") as url:
        made = create_engine(url)
        with made.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT)")
        yield made
        made.dispose()


@pytest.fixture
def make_pool() -> Iterator[Any]:
    """PgPools closed at the end of the test, whatever it did."""
    pools: list[PgPool] = []

    def make(engine: sa.Engine, **kwargs: Any) -> PgPool:
        url = engine.url.render_as_string(hide_password=False)
        pool = PgPool(PgUrl(url).connect_args(), **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def _pid(conn: PgConnection) -> int:
    pid: int = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    return pid


def _names(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT name FROM t ORDER BY id")]


def test_a_connection_is_kept_between_transactions_and_pinged_after_a_long_idle(
    engine, make_pool, monkeypatch, postgres_url
):
    pings: list[bool] = []
    real = pool_module._answers
    monkeypatch.setattr(pool_module, "_answers", lambda d: pings.append(real(d)) or pings[-1])
    now = [100.0]
    pool = make_pool(engine, idle_ping=10.0, clock=lambda: now[0])
    with pool.begin() as conn:
        first = _pid(conn)
    now[0] += 5
    with pool.begin() as conn:
        assert _pid(conn) == first
    assert pings == [], "no ping within the idle time"
    now[0] += 11
    with pool.begin() as conn:
        assert _pid(conn) == first
    assert pings == [True], "pinged after a long idle, and kept"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    now[0] += 11
    with pool.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (%s, %s)", (1, "a"))
        assert _pid(conn) != first
    assert pings == [True, False], "the ping failed: a new connection, no batch lost"
    assert _names(engine) == ["a"]


def test_an_error_rolls_the_transaction_back_and_the_connection_goes_on(engine, make_pool):
    pool = make_pool(engine)
    with pytest.raises(psycopg.errors.UniqueViolation):
        with pool.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (%s, %s)", [(1, "a"), (2, "b")])
            conn.exec_driver_sql("INSERT INTO t VALUES (%s, %s)", (1, "again"))
    assert _names(engine) == []
    with pool.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (%(id)s, %(name)s)", {"id": 3, "name": "c"})
    pool.close()
    assert _names(engine) == ["c"]


def test_a_savepoint_rolls_back_alone(engine, make_pool):
    pool = make_pool(engine)
    with pool.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (%s, %s)", (1, "kept"))
        with pytest.raises(psycopg.IntegrityError), conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO t VALUES (%s, %s)", (1, "twice"))
        with conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO t VALUES (%s, %s)", (2, "also"))
    pool.close()
    assert _names(engine) == ["kept", "also"]


def test_a_connection_the_server_dropped_is_never_reused(engine, postgres_url, make_pool):
    pool = make_pool(engine)
    with pool.begin() as conn:
        dropped = _pid(conn)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (dropped,))
    with pytest.raises(psycopg.OperationalError):
        with pool.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
    with pool.begin() as conn:
        assert _pid(conn) != dropped
    pool.close()


def test_a_percent_in_a_name_is_written_doubled(engine, make_pool):
    pool = make_pool(engine)
    with pool.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "50%% off" (id BIGINT)')
        conn.exec_driver_sql('INSERT INTO "50%% off" VALUES (%s)', (7,))
        assert conn.exec_driver_sql('SELECT id FROM "50%% off"').scalar_one() == 7
        assert has_table(conn, "50% off")
    pool.close()


TYPES = [
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "NUMERIC(10, 2)",
    "DOUBLE PRECISION",
    "REAL",
    "BOOLEAN",
    "JSON",
    "JSONB",
    "TEXT",
    "VARCHAR(20)",
    "TIMESTAMP WITH TIME ZONE",
    "DATE",
    "UUID",
    "INTEGER[]",
    "MONEY",
    "BYTEA",
    "small_count",
]


def test_columns_read_from_the_catalog_sort_as_the_inspector_did(engine, make_pool):
    columns = ", ".join(f"c{i} {kind}" for i, kind in enumerate(TYPES))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE DOMAIN small_count AS INTEGER CHECK (VALUE >= 0)")
        conn.exec_driver_sql(f"CREATE TABLE wide ({columns})")
        conn.exec_driver_sql("CREATE VIEW wide_view AS SELECT c0, c9 FROM wide")
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        expected = [(c["name"], _sqlalchemy_kind(c["type"])) for c in inspector.get_columns("wide")]
        view = [
            (c["name"], _sqlalchemy_kind(c["type"])) for c in inspector.get_columns("wide_view")
        ]
    pool = make_pool(engine)
    with pool.begin() as conn:
        found = read_columns(conn, "wide")
        assert found is not None
        assert [(name, kind) for name, kind, _ in found] == expected
        assert found[3][2] == "NUMERIC(10,2)"
        viewed = read_columns(conn, "wide_view")
        assert viewed is not None and [(n, k) for n, k, _ in viewed] == view
        assert read_columns(conn, "missing") is None
        assert not has_table(conn, "missing") and has_table(conn, "wide_view")
    pool.close()


def test_at_most_max_size_connections_and_a_wait_for_one(engine, make_pool):
    pool = make_pool(engine, max_size=2, wait=0.2)
    with pool.begin() as first, pool.begin() as second:
        held = {_pid(first), _pid(second)}
        with pytest.raises(TimeoutError, match="all 2 of this process's connections"):
            with pool.begin():
                pass
    done: list[int] = []

    def later() -> None:
        with pool.begin() as conn:
            done.append(_pid(conn))

    with pool.begin() as first:
        waiter = threading.Thread(target=later)
        with pool.begin():
            waiter.start()
            time.sleep(0.05)
            assert not done, "it waits while both are in use"
        waiter.join(timeout=5)
    assert done and done[0] in held, "it took one of the two, not a third"
