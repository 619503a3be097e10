"""A PostgreSQL database URL read without SQLAlchemy: the keyword arguments psycopg
connects with, the form messages show it in, and the one-line error of a connection that
failed. A run into PostgreSQL opens its database with psycopg alone (`store._pg_pool`);
`store._engine` shows and reports the same way.

The URL is read as SQLAlchemy's `make_url` reads it (user, password and database
percent-decoded, an IPv6 host in brackets, the query string's parameters passed on to
libpq), so both connect to the same place; `interlink.store`'s tests compare the two.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from interlink.errors import ConfigError

__all__ = [
    "CONNECT_TIMEOUT",
    "PgUrl",
    "cannot_connect",
    "connect_failure",
    "is_postgres_url",
]

CONNECT_TIMEOUT = 10
"""Seconds to wait for PostgreSQL to answer, unless the URL sets `connect_timeout`."""

_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})

_URL = re.compile(
    r"(?P<scheme>[\w+]+)://"
    r"(?:(?P<user>[^:/]*)(?::(?P<password>[^@]*))?@)?"
    r"(?:(?:\[(?P<ipv6>[^/?]+)\]|(?P<host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?"
    r"(?:/(?P<database>[^?]*))?"
    r"(?:\?(?P<query>.*))?",
    re.S,
)

# psycopg's text repeats the host and port the URL already shows.
_PG_PREFIX = re.compile(
    r'^(connection failed: )?connection to server at "[^"]*"(, port \d+)? failed: '
)
_PG_FATAL = re.compile(r"^FATAL:\s+")


def is_postgres_url(url: str) -> bool:
    """Whether `url` names a PostgreSQL database (postgresql://, postgres://,
    postgresql+psycopg://)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in _SCHEMES


class PgUrl:
    """One PostgreSQL URL, read; see the module docstring."""

    def __init__(self, url: str) -> None:
        found = _URL.fullmatch(url)
        if found is None or not is_postgres_url(url):
            raise ConfigError(
                "the database URL is not a PostgreSQL URL (postgresql://user@host/db)",
                key="database",
            )
        parts = found.groupdict()
        self.user = _decoded(parts["user"])
        self.password = _decoded(parts["password"])
        self.host: str | None = parts["ipv6"] or parts["host"]
        port = parts["port"]
        try:
            self.port = int(port) if port else None
        except ValueError:
            raise ConfigError(
                f"the database URL's port {port!r} is not a number", key="database"
            ) from None
        self.database = _decoded(parts["database"])
        self.query: list[tuple[str, str]] = parse_qsl(parts["query"] or "")

    def connect_args(self) -> dict[str, Any]:
        """What `psycopg.connect` takes, as SQLAlchemy's psycopg dialect passes it."""
        args: dict[str, Any] = {}
        if self.host is not None:
            args["host"] = self.host
        if self.port is not None:
            args["port"] = self.port
        if self.user is not None:
            args["user"] = self.user
        if self.password is not None:
            args["password"] = self.password
        if self.database is not None:
            args["dbname"] = self.database
        args.update(self.query)
        args.setdefault("connect_timeout", CONNECT_TIMEOUT)
        return args

    def shown(self) -> str:
        """The URL as messages show it: the password masked, no query string (it may hold
        one too), the way SQLAlchemy renders it."""
        text = "postgresql://"
        if self.user is not None:
            text += quote(self.user, safe=" +")
            if self.password is not None:
                text += ":***"
            text += "@"
        if self.host is not None:
            text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        if self.database is not None:
            text += "/" + quote(self.database, safe=" +/")
        return text


def _decoded(value: str | None) -> str | None:
    return None if value is None else unquote(value)


def connect_failure(text: str, password: str | None) -> str:
    """psycopg's reason a connection failed, on one line: without the host it repeats,
    the password masked, a refusal said plainly."""
    text = " ".join(text.split())
    text = _PG_FATAL.sub("", _PG_PREFIX.sub("", text))
    if password:
        text = text.replace(password, "***")
    if text.lower().startswith("connection refused"):
        text = "connection refused (is PostgreSQL running there?)"
    return text


def cannot_connect(shown: str, text: str, password: str | None) -> ConfigError:
    """The ConfigError of a database interlink could not connect to."""
    return ConfigError(
        f"cannot connect to {shown}: {connect_failure(text, password)}", key="database"
    )
