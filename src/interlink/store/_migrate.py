"""Bring interlink's own tables to the schema this release expects.

The schema is versioned with Alembic: one revision per change in `store/migrations/`, and
the database records the revision it is at in `interlink_alembic_version` (a name of its
own, so a project's own Alembic history never collides with it). `prepare_schema` runs on
every open:

- at this release's revision: one query, and nothing else (Alembic is not even imported);
- no interlink tables yet: they are created at the newest revision;
- SQLite, at an older revision: upgraded in place, in one transaction;
- PostgreSQL, at an older revision: refused with `SchemaOutdatedError` until someone runs
  `interlink db upgrade` (`upgrade_schema`), since other workers may share the database;
- at a revision this release does not know (made by a newer release): refused.

Tables made before the schema was versioned (no version table, `interlink_runs` there) are
at revision 0001. Creating and upgrading are serialized between processes: under
`BEGIN IMMEDIATE` on SQLite (the file's write lock; others wait for it through
`busy_timeout`), under a transaction-scoped advisory lock per schema on PostgreSQL. The
revision is read again once the lock is held, so only the first process does the work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from interlink.errors import SchemaOutdatedError

from ._revision import HEAD, VERSION_TABLE
from ._schema import metadata
from ._sqlite_file import schema_lock

__all__ = [
    "HEAD",
    "REVISIONS",
    "VERSION_TABLE",
    "SchemaStatus",
    "prepare_schema",
    "run_migrations",
    "schema_status",
    "upgrade_schema",
]

log = logging.getLogger("interlink.store")

REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007")
"""Every revision in `migrations/versions`, oldest first (a test checks the two agree)."""
UNVERSIONED = "0001"
"""The revision of tables made before the schema was versioned."""
MIGRATIONS = Path(__file__).with_name("migrations")

# Alembic's own version table, as `alembic.runtime.migration` defines it, so that a
# database created here without loading Alembic is exactly one it would have stamped.
_version_metadata = sa.MetaData()
_version = sa.Table(
    VERSION_TABLE,
    _version_metadata,
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)
_READ_VERSION = sa.select(_version.c.version_num)
# Per schema, so tests (or tenants) in separate schemas of one database do not wait on each other.
_PG_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(hashtext('interlink.schema.' || coalesce(current_schema(), '')))"
)


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's interlink tables stand against this release."""

    database: str
    """The database (and PostgreSQL schema), for messages; never a password."""
    current: str | None
    """The revision the tables are at; None when there are none yet."""
    head: str = HEAD
    """The revision this release needs."""
    unversioned: bool = False
    """The tables predate versioning (no version table): they are at revision 0001."""

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def newer(self) -> bool:
        """Made by a release newer than this one: a revision it does not know."""
        return self.current is not None and self.current not in REVISIONS

    def describe(self) -> str:
        """The current revision in words: "0002", or "0001 (tables made before ...)"."""
        if self.current is None:
            return "none (no interlink tables yet)"
        if self.unversioned:
            return f"{self.current} (tables made before interlink versioned its schema)"
        return self.current


def prepare_schema(engine: sa.Engine) -> None:
    """Create or upgrade interlink's tables on open (see the module docstring).

    A refused database raises `SchemaOutdatedError` after closing the connections `engine`
    pooled: the caller has no use for them (the engine itself stays usable).
    """
    if _has_file(engine) and _quick_revision(engine) == HEAD:
        return
    try:
        _prepare(engine)
    except SchemaOutdatedError:
        engine.dispose()
        raise


def _prepare(engine: sa.Engine) -> None:
    sqlite = engine.dialect.name == "sqlite"
    with _schema_lock(engine) as conn:
        status = _status(conn)
        if status.up_to_date:
            return
        if status.current is None:
            _create_at_head(conn)
            log.info("created interlink's tables in %s at revision %s", status.database, HEAD)
            return
        if status.newer:
            raise _newer(status)
        if not sqlite:
            raise SchemaOutdatedError(
                f"{status.database}: interlink's tables are at schema revision "
                f"{status.describe()}, this release needs {HEAD}; run `interlink db upgrade` "
                "(back up the database first), then start again"
            )
        _upgrade(conn, status)


def upgrade_schema(engine: sa.Engine) -> tuple[SchemaStatus, SchemaStatus]:
    """Create or upgrade interlink's tables to this release's revision, on any database
    (`interlink db upgrade`); the status before and after. A newer schema is refused."""
    with _schema_lock(engine) as conn:
        before = _status(conn)
        if before.newer:
            raise _newer(before)
        if before.current is None:
            _create_at_head(conn)
        elif not before.up_to_date:
            _upgrade(conn, before)
        after = _status(conn)
    return before, after


def schema_status(engine: sa.Engine) -> SchemaStatus:
    """Where the database's interlink tables stand, changing nothing (`interlink db status`)."""
    with engine.connect() as conn:
        return _status(conn)


# -- reading the revision ---------------------------------------------------------------------


def _quick_revision(engine: sa.Engine) -> str | None:
    """The recorded revision in one query; None if there is no version table (yet)."""
    with engine.connect() as conn:
        try:
            found = conn.execute(_READ_VERSION).scalars().all()
        except sa.exc.DBAPIError:  # no version table: the slow path finds out why
            return None
    return found[0] if len(found) == 1 else None


def _status(conn: sa.Connection) -> SchemaStatus:
    database = _describe(conn)
    inspector = sa.inspect(conn)
    if inspector.has_table(VERSION_TABLE):
        found = conn.execute(_READ_VERSION).scalars().all()
        if found:
            return SchemaStatus(database, ",".join(sorted(found)))
    if inspector.has_table("interlink_runs"):
        return SchemaStatus(database, UNVERSIONED, unversioned=True)
    return SchemaStatus(database, None)


def _describe(conn: sa.Connection) -> str:
    """The database for a message: the SQLite file, or PostgreSQL's URL without password or
    query (where passwords can hide too), and the schema when it is not `public`."""
    url = conn.engine.url
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    shown = sa.URL.create(
        url.get_backend_name(),
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
    ).render_as_string()
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
    return shown if schema in (None, "public") else f"{shown} (schema {schema})"


def _newer(status: SchemaStatus) -> SchemaOutdatedError:
    return SchemaOutdatedError(
        f"{status.database}: interlink's tables are at schema revision {status.current}, "
        f"newer than this release knows (it needs {HEAD}); a newer interlink upgraded them: "
        "run that release (or a later one) against this database"
    )


# -- changing the schema ------------------------------------------------------------------------


def _sqlite_file(engine: sa.Engine) -> str | None:
    """The SQLite database's file as SQLite opens it; None for PostgreSQL and in memory."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    if not url.database or url.database == ":memory:":
        return None
    return url.database


def _has_file(engine: sa.Engine) -> bool:
    """False for an SQLite file that does not exist yet or is empty: its first connection
    switches it to WAL, which SQLite refuses ("database is locked", busy_timeout or not)
    while another process's first connection does the same; so those connect under the
    file lock (`_schema_lock`) only."""
    path = _sqlite_file(engine)
    return path is None or (os.path.exists(path) and os.path.getsize(path) > 0)


@contextmanager
def _file_lock(engine: sa.Engine) -> Iterator[None]:
    """On an SQLite file, an exclusive lock on the lock file beside it (`interlink.db` ->
    `interlink.db-schema.lock`), held before the first connection; nothing otherwise."""
    path = _sqlite_file(engine)
    if path is None:
        yield
        return
    with schema_lock(path):
        yield


@contextmanager
def _schema_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that holds the schema lock; committed on exit, rolled
    back on an exception."""
    with _file_lock(engine), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # The database's write lock, now rather than at the first write: a process that
            # does not take the file lock (an older release) waits here (busy_timeout).
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(_PG_LOCK)
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _create_at_head(conn: sa.Connection) -> None:
    """A database without interlink's tables: create them as they are at the newest revision
    (what running every migration would give; tests/store/test_schema_head.py checks)."""
    metadata.create_all(conn)
    _stamp(conn, HEAD)


def _stamp(conn: sa.Connection, revision: str) -> None:
    _version_metadata.create_all(conn)
    conn.execute(sa.delete(_version))
    conn.execute(sa.insert(_version).values(version_num=revision))


def run_migrations(conn: sa.Connection, target: str = "head") -> None:
    """Run Alembic's `upgrade` to `target` on `conn`, inside the caller's transaction (it
    commits nothing); Alembic is imported here, only when there is something to migrate."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, target)


def _upgrade(conn: sa.Connection, status: SchemaStatus) -> None:
    """Run the migrations from `status.current` to the newest, in the caller's transaction."""
    if status.unversioned:
        _stamp(conn, UNVERSIONED)
    run_migrations(conn)
    log.info(
        "upgraded interlink's tables in %s from revision %s to %s",
        status.database,
        status.current,
        HEAD,
    )
