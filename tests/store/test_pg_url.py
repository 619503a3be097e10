"""`PgUrl` reads a database URL as SQLAlchemy's `make_url` and its psycopg dialect do (a
run on PostgreSQL connects without SQLAlchemy, everything else through it): the same
connection arguments and the same masked form in messages, URL by URL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from interlink.errors import ConfigError
from interlink.store._pg_url import CONNECT_TIMEOUT, PgUrl, connect_failure, is_postgres_url

URLS = [
    "postgresql://app:secret@db.example:5432/interlink",
    "postgresql://app@127.0.0.1/interlink",
    "postgres://app:s%40cr%3At@db/interlink",
    "postgresql+psycopg://app:pw@[::1]:6543/my%20db",
    "postgresql://app:pw@db/app?options=-csearch_path%3Dbench&sslmode=disable",
    "postgresql://app:pw@db/app?connect_timeout=3",
    "postgresql:///interlink",
    "postgresql://user%2Bname:p+w@host/d",
]


def _sqlalchemy_args(url: str) -> dict[str, object]:
    """What SQLAlchemy's psycopg dialect hands psycopg.connect for `url`."""
    engine = sa.create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    engine.dispose()
    kwargs.pop("context", None)  # SQLAlchemy's own adapters (its JSON types), not the place
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return kwargs


@pytest.mark.parametrize("url", URLS)
def test_the_connection_arguments_are_sqlalchemys(url: str) -> None:
    mine = PgUrl(url).connect_args()
    theirs = _sqlalchemy_args(url)
    assert {k: str(v) for k, v in mine.items()} == {k: str(v) for k, v in theirs.items()}


@pytest.mark.parametrize("url", URLS)
def test_the_url_is_shown_as_sqlalchemy_renders_it(url: str) -> None:
    theirs = make_url(url).set(drivername="postgresql", query={})
    assert PgUrl(url).shown() == theirs.render_as_string(hide_password=True)
    assert "secret" not in PgUrl(url).shown()


def test_only_postgres_urls() -> None:
    assert is_postgres_url("postgres://x/y") and is_postgres_url("POSTGRESQL://x/y")
    assert not is_postgres_url("sqlite:///x.db") and not is_postgres_url("postgresql")
    with pytest.raises(ConfigError, match="not a PostgreSQL URL"):
        PgUrl("mysql://x/y")
    with pytest.raises(ConfigError, match="port 'abc' is not a number"):
        PgUrl("postgresql://h:abc/d")


def test_a_failure_is_one_line_with_the_password_masked() -> None:
    text = (
        'connection failed: connection to server at "127.0.0.1", port 5 failed: '
        'FATAL:  password authentication failed for user "app"\n  (hunter2)'
    )
    assert connect_failure(text, "hunter2") == (
        'password authentication failed for user "app" (***)'
    )
    refused = 'connection to server at "h", port 1 failed: Connection refused\n\tIs it up?'
    assert connect_failure(refused, None) == "connection refused (is PostgreSQL running there?)"
