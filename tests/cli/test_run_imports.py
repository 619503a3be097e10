"""`interlink run` of a REST -> SQLite pipeline loads only what it uses: no SOAP (zeep,
lxml), no server (fastapi, uvicorn, jinja2), no PostgreSQL (psycopg, procrastinate), no
OAuth flow (authlib), not httpx's own command-line client (pygments, rich.syntax), not
SQLAlchemy's PostgreSQL dialect (the store's partial indexes name it only in DDL run on
PostgreSQL), not JMESPath for dotted `records:` paths, and neither aiohttp nor httpcore:
a run of a few sequential pages sends through threads over `http.client`
(`AutoTransport`), and only a client with many requests in flight loads aiohttp. Nor
SQLAlchemy or Alembic: on an SQLite file the store makes its tables, keeps its books and
the table writer writes on sqlite3 alone. Every process pays for what it imports (issue
15, section 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

from interlink.sandbox import SandboxServer, create_shop_app
from interlink.store import Store
from tests.jobs.procrastinate_schema import fresh_schema

HEAVY = [
    "zeep",
    "lxml",
    "fastapi",
    "uvicorn",
    "jinja2",
    "psycopg",
    "procrastinate",
    "authlib",
    "pygments",
    "rich.syntax",
    "sqlalchemy.dialects.postgresql",
    "jmespath",
    "interlink.config._webhooks",
    "interlink.config._metrics",
]
"""Modules `interlink run` of a REST -> SQLite pipeline never needs (nor the models of
config sections its file does not have: config/_sections.py)."""

SENDING = ["aiohttp", "yarl", "httpcore", "h11"]
"""What only many requests at once need (AutoTransport imports aiohttp when it moves), or
the `httpx` transport named in a connection (httpcore and h11): the thread transport
sends through the standard library's `http.client`."""

PARSER = ["typer", "click"]
"""The command-line framework: the console script reads a plain `interlink run` line
itself (`interlink.cli._run_argv`) and builds the Typer app for anything else."""

LIVE = ["rich"]
"""The live progress bar (only on a terminal; here stderr is a pipe) and the summary,
which written to a pipe is plain text (cli/_run_summary.py): no rich at all."""

BOOKS = ["sqlalchemy", "alembic", "interlink.store._schema", "interlink.oauth._vault"]
"""What only upgrading interlink's tables needs, on an SQLite file."""


def _probe(heavy: list[str]) -> str:
    return (
        "import atexit, sys\n"
        f"heavy = {heavy!r}\n"
        "atexit.register(lambda: print('LOADED', sorted(m for m in heavy"
        " if sys.modules.get(m) is not None), file=sys.stderr))\n"
        "from interlink.__main__ import main\n"
        "main()\n"
    )


def _loaded(heavy: list[str], *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _probe(heavy), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("LOADED")]


def _write_config(
    tmp_path: Path, base_url: str, *, database: str | None = None, write: str = "merge"
) -> Path:
    config = tmp_path / "interlink.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": database or f"sqlite:///{tmp_path / 'interlink.db'}",
                "connections": {
                    "shop": {
                        "base_url": base_url,
                        "auth": {"type": "bearer", "token": "sandbox-token"},
                    }
                },
                "resources": {
                    "shop": {
                        "customers": {
                            "path": "/customers",
                            "records": "data",
                            "paginate": {"type": "offset", "page_size": 10},
                        }
                    }
                },
                "pipelines": {
                    "customers": {
                        "source": "shop.customers",
                        "destination": "sql:customers",
                        "write": write,
                    }
                },
            }
        )
    )
    return config


def test_a_rest_to_sqlite_run_imports_nothing_heavy(tmp_path: Path) -> None:
    with SandboxServer(create_shop_app(records=30)) as shop:
        config = _write_config(tmp_path, shop.url)
        loaded = _loaded(
            HEAVY + SENDING + PARSER + LIVE, "run", "customers", "--config", str(config)
        )
        # -v after the name, the config before it: still read without Typer.
        verbose = _loaded(PARSER, "--config", str(config), "run", "customers", "-v")
        # A form the reader leaves to Typer (a short option with its value attached) runs
        # through the Typer app, to the same end.
        attached = _loaded(PARSER, "run", "customers", f"-c{config}")
    assert loaded == ["LOADED []"], loaded
    assert verbose == ["LOADED []"], verbose
    assert attached == ["LOADED ['click', 'typer']"] or attached == ["LOADED ['typer']"], attached


def test_commands_that_send_nothing_do_not_load_the_transport(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "http://127.0.0.1:9")
    assert _loaded(HEAVY + SENDING, "check", "--config", str(config)) == ["LOADED []"]
    assert _loaded(HEAVY + SENDING, "runs", "--config", str(config)) == ["LOADED []"]


def test_runs_into_an_sqlite_file_do_not_load_sqlalchemy(tmp_path: Path) -> None:
    with SandboxServer(create_shop_app(records=30)) as shop:
        config = _write_config(tmp_path, shop.url)
        first = _loaded(HEAVY + SENDING + BOOKS, "run", "customers", "--config", str(config))
        assert first == ["LOADED []"], first  # it made interlink's tables
        again = _loaded(HEAVY + SENDING + BOOKS, "run", "customers", "--config", str(config))
        assert again == ["LOADED []"], again
        listed = _loaded(BOOKS, "runs", "--config", str(config))
    assert listed == ["LOADED []"], listed


@pytest.mark.parametrize("write", ["merge", "append"])
def test_runs_into_postgresql_do_not_load_sqlalchemy(
    tmp_path: Path, postgres_url: str, write: str
) -> None:
    """Once interlink's tables are there (`interlink db upgrade`, or the first run, which
    makes them with Alembic), a run into PostgreSQL opens, keeps its books and copies its
    rows with psycopg alone; pages of 60 records go in by COPY."""
    with fresh_schema(postgres_url, "test_imports") as url:
        Store.open(url).close()  # the tables
        with SandboxServer(create_shop_app(records=130)) as shop:
            config = _write_config(tmp_path, shop.url, database=url, write=write)
            text = config.read_text().replace("page_size: 10", "page_size: 60")
            config.write_text(text)
            unused = [m for m in HEAVY if m != "psycopg"] + SENDING + BOOKS
            first = _loaded(unused, "run", "customers", "--config", str(config))
            again = _loaded(unused, "run", "customers", "--config", str(config))
        with psycopg.connect(url) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM customers").fetchone() or (0,)
    assert first == ["LOADED []"], first
    assert again == ["LOADED []"], again
    assert rows == (130 if write == "merge" else 260)
