"""A database interlink cannot use is one line naming `database`, exit code 2, from every
command that opens it; never a traceback, never the password.

See issue 11, section 2: a missing or unwritable folder, a path that is a file or a folder,
or an unreachable PostgreSQL gave FileExistsError / OperationalError tracebacks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli import _serve
from interlink.cli.main import app
from tests.cli.fake_postgres import refusing_postgres

PASSWORD = "pw-Zq81-never-printed"

CONFIG = """\
database: "{url}"
connections:
  shop: {{base_url: "http://127.0.0.1:9"}}
resources:
  shop:
    customers: {{path: /customers}}
pipelines:
  copy: {{source: shop.customers, destination: "sql:customers"}}
"""

COMMANDS = {
    "run": ["run", "copy"],
    "runs": ["runs"],
    "serve": ["serve", "--port", "0"],
    "worker": ["worker", "--burst"],
    "apikeys": ["apikeys", "list"],
    "db upgrade": ["db", "upgrade"],
    "db status": ["db", "status"],
    "conflicts": ["conflicts", "list"],
}

ROOT = os.geteuid() == 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Each case: (a URL, given the tmp path; the words the error must carry).
Case = tuple[Callable[[Path], str], str]


def _file(tmp: Path) -> str:
    (tmp / "afile").write_text("not a folder")
    return f"sqlite:///{tmp}/afile/interlink.db"


def _folder(tmp: Path) -> str:
    (tmp / "adir").mkdir()
    return f"sqlite:///{tmp}/adir"


def _read_only_folder(tmp: Path) -> str:
    (tmp / "ro").mkdir(mode=0o555)
    return f"sqlite:///{tmp}/ro/interlink.db"


def _not_a_database(tmp: Path) -> str:
    (tmp / "notes.db").write_text("hello, I am a text file and no SQLite database\n" * 100)
    return f"sqlite:///{tmp}/notes.db"


CASES: dict[str, Case] = {
    "missing folder": (
        lambda tmp: f"sqlite:///{tmp}/no/such/folder/interlink.db",
        "does not exist",
    ),
    "folder is a file": (_file, "is a file, not a folder"),
    "path is a folder": (_folder, "is a folder, not a database file"),
    "folder the system refuses": (
        # Even root cannot create a file in /proc: the one case only opening the file finds.
        lambda tmp: "sqlite:////proc/interlink-test.db",
        "cannot open it: unable to open database file",
    ),
    "read-only folder": (_read_only_folder, "permission denied"),
    "not a database": (_not_a_database, "file is not a database"),
    "tilde": (lambda tmp: "sqlite:///~/interlink.db", "'~'"),
    "closed port": (
        lambda tmp: f"postgresql://app:{PASSWORD}@127.0.0.1:{_closed_port()}/interlink",
        "connection refused",
    ),
}


@pytest.fixture
def no_serving(monkeypatch):
    def fail(*args: object) -> None:
        raise AssertionError("serve got past opening the database")

    monkeypatch.setattr(_serve, "_run_server", fail)


def invoke(tmp_path: Path, url: str, command: list[str]) -> tuple[int, str, str, object]:
    config = tmp_path / "interlink.yaml"
    config.write_text(CONFIG.format(url=url))
    result = CliRunner().invoke(app, [*command, "-c", str(config)], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr, result.exception


def assert_one_database_line(code: int, out: str, err: str, exc: object, words: str) -> None:
    assert code == 2, (out, err, exc)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "database: " in lines[0]
    assert words in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert PASSWORD not in out + err
    assert "sqlalche.me" not in err


@pytest.mark.usefixtures("no_serving")
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_database_that_cannot_be_used_is_one_line(tmp_path, case, command):
    make_url, words = case
    if make_url is _read_only_folder and ROOT:
        pytest.skip("root writes into a read-only folder; /proc covers it")
    url = make_url(tmp_path)
    code, out, err, exc = invoke(tmp_path, url, command)
    assert_one_database_line(code, out, err, exc, words)


@pytest.mark.usefixtures("no_serving")
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_refused_password_is_never_shown(tmp_path, command):
    with refusing_postgres() as (port, received):
        url = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/interlink"
        code, out, err, exc = invoke(tmp_path, url, command)
    assert received and received[0] == PASSWORD.encode()  # the password did reach the server
    assert_one_database_line(code, out, err, exc, 'password authentication failed for user "app"')
    assert f"postgresql://app:***@127.0.0.1:{port}/interlink" in err


@pytest.mark.usefixtures("no_serving")
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_unknown_postgres_database(tmp_path, postgres_url, command):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password=PASSWORD, database="interlink_no_such_db")
    code, out, err, exc = invoke(tmp_path, url.render_as_string(hide_password=False), command)
    assert_one_database_line(code, out, err, exc, 'database "interlink_no_such_db" does not exist')


def test_a_relative_folder_is_created(tmp_path, monkeypatch):
    # The default, sqlite:///.interlink/interlink.db, lives in a folder interlink creates.
    monkeypatch.chdir(tmp_path)
    code, out, err, exc = invoke(tmp_path, "sqlite:///state/dbs/interlink.db", ["runs"])
    assert code == 0, (out, err, exc)
    assert (tmp_path / "state" / "dbs" / "interlink.db").is_file()


@pytest.mark.parametrize("case", ["folder is a file", "closed port"])
def test_a_real_process_prints_one_line(tmp_path, case):
    url = CASES[case][0](tmp_path)
    config = tmp_path / "interlink.yaml"
    config.write_text(CONFIG.format(url=url))
    interlink = str(Path(sys.executable).with_name("interlink"))
    done = subprocess.run(
        [interlink, "runs", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"{config}:1: database: ")
    assert PASSWORD not in done.stderr
