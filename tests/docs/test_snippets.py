"""Every YAML and shell snippet of README.md and docs/*.md runs, so the docs cannot drift.

YAML snippets are loaded with interlink's loader; shell snippets run in bash in a
temporary project (a copy of examples/, the repository's .venv, an example's
interlink.yaml) against a real sandbox, and every command must exit 0. The ports the
docs use, 8080 (the sandbox) and 8000 (`interlink serve`), become free ones: a block
that starts `interlink sandbox` with options of its own gets its own port, the others
reach the shared sandbox there (a plain `interlink sandbox --port 8080 &` line is left to
it, shown as `: interlink sandbox ...` in a failure's script). What each fence is, and
the markers that classify the rest, are in tests/docs/snippets.py; a snippet the test
cannot classify fails, naming what to write.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from interlink.config import InterlinkConfig, load_config
from interlink.sandbox import SandboxServer, create_sandbox_app
from tests.docs.snippets import YAML_LANGS, Snippet, snippets_of

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DEFAULT_PROJECT = "examples/quickstart"
SHELL_TIMEOUT = 30.0
TOKEN = "sandbox-token"


def _collect() -> list[Snippet]:
    found: list[Snippet] = []
    for page in PAGES:
        found += snippets_of(page, page.relative_to(REPO).as_posix())
    return [snippet for snippet in found if snippet.kind != "plain"]


SNIPPETS = _collect()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    app = create_sandbox_app(records=60, token=TOKEN, commerce_records=10, commerce_overlap=3)
    with SandboxServer(app) as server:
        yield server


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda snippet: snippet.id)
def test_snippet(snippet: Snippet, sandbox: SandboxServer, tmp_path: Path) -> None:
    kind = snippet.kind
    if kind == "skip":
        pytest.skip(f"{snippet.id}: {snippet.marker.skip}")
    if kind == "unclassified":
        pytest.fail(f"{snippet.id}: {snippet.why_unclassified()}", pytrace=False)
    if kind == "yaml":
        check_yaml(snippet, tmp_path)
    else:
        run_shell(snippet, sandbox, tmp_path)


def test_every_page_has_snippets() -> None:
    """The collection itself works: a page set that yields nothing would pass vacuously."""
    pages = {snippet.file for snippet in SNIPPETS}
    assert {"README.md", "docs/connectors.md", "docs/pipelines.md"} <= pages
    assert sum(snippet.kind == "shell" for snippet in SNIPPETS) >= 10
    assert sum(snippet.kind == "yaml" for snippet in SNIPPETS) >= 10


# YAML


def check_yaml(snippet: Snippet, tmp_path: Path) -> None:
    """Load a YAML snippet (laid over its project, placed under its key path) as a config."""
    marker = snippet.marker
    if marker.under is None and marker.project is None and not marker.above:
        text = snippet.text
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = {}  # not YAML at all: the loader below says where and why
        known = set(InterlinkConfig.model_fields)
        if not isinstance(data, dict) or not set(data) <= known:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            pytest.fail(
                f"{snippet.id}: a YAML fragment ({keys}), not an interlink.yaml: mark it "
                "<!-- snippet: under KEY.PATH --> (and 'project PATH' for what it refers "
                "to) or <!-- snippet: skip, REASON -->",
                pytrace=False,
            )
    else:
        text = yaml.safe_dump(resolved_config(snippet), sort_keys=False)
    path = tmp_path / "interlink.yaml"
    path.write_text(text, encoding="utf-8")
    cwd = Path.cwd()
    os.chdir(tmp_path)  # relative SQLite paths land in the temporary folder
    try:
        load_config(path, env=_yaml_env(text))
    except Exception as exc:  # the message is the test's answer
        pytest.fail(f"{snippet.id}: {type(exc).__name__}: {exc}\n--- loaded:\n{text}", False)
    finally:
        os.chdir(cwd)


def resolved_config(snippet: Snippet) -> Any:
    """The config a snippet's marker builds: its project, the YAML above, then its own text."""
    marker = snippet.marker
    config: Any = {}
    if marker.project not in (None, "empty"):
        config = yaml.safe_load(_project_file(snippet).read_text(encoding="utf-8")) or {}
    if marker.above:
        if snippet.previous_yaml is None:
            pytest.fail(f"{snippet.id}: 'above', but no yaml snippet above it", False)
        config = _merge(config, resolved_config(snippet.previous_yaml))
    if snippet.lang in YAML_LANGS:
        value: Any = yaml.safe_load(snippet.text)
        if marker.under is not None:
            for key in reversed(marker.under.split(".")):
                value = {key: value}
        config = _merge(config, value)
    return config


def _yaml_env(text: str) -> dict[str, str]:
    """Values for the `${VAR}` references without a default: the loader needs them set."""
    env = {"SANDBOX_URL": "http://127.0.0.1:8080", "SHOP_URL": "http://127.0.0.1:8080/shop"}
    for name in re.findall(r"\$\{(\w+)\}", text):
        if name.endswith("URL"):
            value = "http://127.0.0.1:8080"
        elif "SECRET" in name or "WHSEC" in name:
            value = "whsec_c25pcHBldCBzZWNyZXQ="  # also a Standard Webhooks secret
        else:
            value = f"x-{name.lower()}"
        env.setdefault(name, value)
    return env


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return over


def _project_file(snippet: Snippet) -> Path:
    path = REPO / (snippet.marker.project or DEFAULT_PROJECT)
    if path.is_dir():
        path = path / "interlink.yaml"
    if not path.is_file():
        pytest.fail(f"{snippet.id}: the marker's project {path} does not exist", False)
    return path


# Shell


def run_shell(snippet: Snippet, sandbox: SandboxServer, tmp_path: Path) -> None:
    """Run the block's commands in bash, in a temporary project, checking every exit code."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "examples", project / "examples")
    (project / ".venv").symlink_to(REPO / ".venv")
    if snippet.marker.above:
        config_text = yaml.safe_dump(resolved_config(snippet), sort_keys=False)
        (project / "interlink.yaml").write_text(config_text, encoding="utf-8")
    elif snippet.marker.project != "empty":
        shutil.copy(_project_file(snippet), project / "interlink.yaml")

    # Continuation lines joined, as bash reads them, so each command is one line below.
    script = snippet.commands().replace("\\\n", "")
    foreground = _FOREGROUND.search(script)
    if foreground is not None:
        pytest.fail(
            f"{snippet.id}: {foreground[0].strip()!r} runs until Ctrl-C: end the line with "
            "'&' (the test stops it) or mark the block <!-- snippet: skip, REASON -->",
            pytrace=False,
        )
    # A plain `interlink sandbox --port 8080 &` is what the shared sandbox already is:
    # it stands in (starting another costs seconds); a sandbox with options runs itself.
    script = _PLAIN_SANDBOX.sub(r"\1: \2", script)
    own_sandbox = re.search(r"^(?!\s*: )[^\n]*\binterlink sandbox\b", script, re.M) is not None
    sandbox_port = _free_port() if own_sandbox else sandbox.port
    serve_port = _free_port()
    script = re.sub(r"\b8080\b", str(sandbox_port), script)
    script = re.sub(r"\b8000\b", str(serve_port), script)
    script = re.sub(
        r"\binterlink serve\b(?![^\n]*--port)", f"interlink serve --port {serve_port}", script
    )
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTERLINK_")}
    env |= {
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "SANDBOX_URL": sandbox_url,
        "SHOP_URL": f"{sandbox_url}/shop",
        "PROVIDER_URL": f"{sandbox_url}/provider",
        "SHOP_TOKEN": TOKEN,
        "SANDBOX_TOKEN": TOKEN,
        "INTERLINK_URL": f"http://127.0.0.1:{serve_port}",
        "COLUMNS": "100",
        "NO_COLOR": "1",
    }
    if own_sandbox:
        # The sandbox a block starts in the background must be listening before the
        # next command: a user types slower than bash runs.
        script = re.sub(
            r"(\binterlink sandbox\b[^\n&]*&[^\n]*\n)",
            rf"\1{_WAIT_FOR_PORT.format(port=sandbox_port)}\n",
            script,
        )
    script = re.sub(
        r"(\binterlink serve\b[^\n&]*&[^\n]*\n)",
        rf"\1{_WAIT_FOR_PORT.format(port=serve_port)}\n",
        script,
    )
    (project / "snippet.sh").write_text(script, encoding="utf-8")
    code, output = _bash(project, env)
    if code != 0:
        pytest.fail(
            f"{snippet.id}: exit code {code}\n--- script:\n{script}\n--- output:\n{output}",
            pytrace=False,
        )


# `interlink sandbox --port 8080 &`, however the command is spelt, with a comment or not.
_PLAIN_SANDBOX = re.compile(
    r"^(\s*)(\S*interlink sandbox --port 8080 &)[ \t]*(?:#[^\n]*)?$", re.MULTILINE
)

# A server started in the foreground: the block would never get past it.
_FOREGROUND = re.compile(
    r"^[^#\n]*\binterlink (?:serve|worker|sandbox)\b[^#&\n]*(?:#[^\n]*)?$", re.MULTILINE
)

# The wait is a bounded loop: 100 tries of 0.1 s.
_WAIT_FOR_PORT = (
    "for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; "
    "sleep 0.1; done; (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null || "
    "{{ echo 'snippet test: nothing listens on port {port}: the server started in the "
    "background above did not come up' >&2; exit 97; }}"
)


def _bash(project: Path, env: dict[str, str]) -> tuple[int | None, str]:
    """Run snippet.sh with `set -e`; stop whatever it left running; its code and output."""
    log = project / "snippet.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", "set -eo pipefail\nsource ./snippet.sh"],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code: int | None = process.wait(timeout=SHELL_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        _stop_group(process.pid)
        process.wait()
    output = log.read_text(encoding="utf-8", errors="replace")
    if code is None:
        output += f"\n[the test stopped it after {SHELL_TIMEOUT:.0f} s]"
    return code, output[-6000:]


def _stop_group(pgid: int) -> None:
    """SIGTERM the block's process group (servers it left in the background), then SIGKILL."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
