"""`interlink run` of a REST -> SQLite pipeline loads only what it uses: no SOAP (zeep,
lxml), no server (fastapi, uvicorn, jinja2), no PostgreSQL (psycopg, procrastinate), no
OAuth flow (authlib). Every process pays for what it imports (issue 15, section 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from interlink.sandbox import SandboxServer, create_shop_app

HEAVY = ["zeep", "lxml", "fastapi", "uvicorn", "jinja2", "psycopg", "procrastinate", "authlib"]

_PROBE = (
    "import atexit, sys\n"
    f"heavy = {HEAVY!r}\n"
    "atexit.register(lambda: print('LOADED', sorted(m for m in heavy if m in sys.modules),"
    " file=sys.stderr))\n"
    "from interlink.cli.main import main\n"
    "main()\n"
)


def test_a_rest_to_sqlite_run_imports_nothing_heavy(tmp_path: Path) -> None:
    with SandboxServer(create_shop_app(records=30)) as shop:
        config = tmp_path / "interlink.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "database": f"sqlite:///{tmp_path / 'interlink.db'}",
                    "connections": {
                        "shop": {
                            "base_url": shop.url,
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
                        "customers": {"source": "shop.customers", "destination": "sql:customers"}
                    },
                }
            )
        )
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, "run", "customers", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    loaded = [line for line in done.stderr.splitlines() if line.startswith("LOADED")]
    assert loaded == ["LOADED []"], loaded
