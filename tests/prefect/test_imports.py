"""Prefect is loaded only by `import interlink.prefect`, and its absence is explained."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_interlink_and_its_cli_never_import_prefect(tmp_path):
    done = _python(
        "import sys\n"
        "import interlink, interlink.sync, interlink.client, interlink.jobs, interlink.server\n"
        "from interlink.cli.main import app\n"
        "assert 'prefect' not in sys.modules, 'prefect was imported'\n"
        "import interlink.prefect\n"
        "assert 'prefect' in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr


def test_interlink_run_does_not_import_prefect(tmp_path):
    config = tmp_path / "interlink.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'i.db'}\n"
        "connections: {api: {base_url: 'http://127.0.0.1:9'}}\n"
        "resources: {api: {items: {path: /items}}}\n"
        "pipelines: {items: {source: api.items, destination: {sql: items}}}\n"
    )
    # The run fails (nothing listens on port 9); what matters is what it loaded.
    done = _python(
        "import sys, atexit\n"
        "atexit.register(lambda: print('PREFECT' if 'prefect' in sys.modules else 'CLEAN'))\n"
        "from interlink.cli.main import main\n"
        f"sys.argv = ['interlink', 'run', 'items', '--config', {str(config)!r}]\n"
        "main()\n"
    )
    assert done.stdout.strip().endswith("CLEAN"), (done.stdout, done.stderr)
    assert done.returncode == 1, done.stderr


def test_without_the_extra_the_import_error_says_what_to_install():
    done = _python(
        "import sys\n"
        "sys.modules['prefect'] = None  # as if Prefect were not installed\n"
        "try:\n"
        "    import interlink.prefect\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    raise SystemExit('imported without Prefect')\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'interlink[prefect]'" in done.stdout
