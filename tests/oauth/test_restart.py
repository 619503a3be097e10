"""A rotated refresh token survives the process that got it (issue 13).

The sandbox's provider rotates refresh tokens and treats a used one as stolen (it revokes
the whole family). Two `interlink run` processes read through an `oauth2` connection whose
interlink.yaml holds only the first refresh token; access tokens live one second, so each
run refreshes. The second run must start from the token the first one saved in the vault:
with the token in memory only, it sent the file's long-used refresh token and failed with
`invalid_grant`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from interlink.sandbox import OAuthProvider, SandboxServer, create_oauth_provider_app

CLIENT, SECRET = "provider-client", "provider-secret"


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, str]]:
    provider = OAuthProvider(access_token_lifetime=1)
    with SandboxServer(create_oauth_provider_app(provider)) as server:
        yield provider, server.url


def project(tmp_path: Path, url: str, refresh_token: str) -> Path:
    path = tmp_path / "interlink.yaml"
    (tmp_path / "state").mkdir()
    path.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{tmp_path / 'state' / 'interlink.db'}",
                "connections": {
                    "provider": {
                        "base_url": f"{url}/api",
                        "auth": {
                            "type": "oauth2",
                            "token_url": f"{url}/oauth/token",
                            "client_id": CLIENT,
                            "client_secret": SECRET,
                            "auth_method": "client_secret_post",
                            "refresh_token": refresh_token,
                        },
                    }
                },
                "resources": {
                    "provider": {
                        "customers": {
                            "path": "/customers",
                            "records": "data",
                            "paginate": {"type": "offset", "page_size": 100},
                        }
                    }
                },
                "pipelines": {
                    "customers": {
                        "source": "provider.customers",
                        "destination": {"sql": "customers"},
                        "write": "replace",
                    }
                },
            }
        )
    )
    return path


def run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from interlink.cli.main import main; main()",
            "run",
            "customers",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_second_run_uses_the_refresh_token_the_first_one_got(
    provider: tuple[OAuthProvider, str], tmp_path: Path
) -> None:
    sandbox, url = provider
    first_refresh = sandbox.grant(CLIENT, "acct_1001")["refresh_token"]
    config = project(tmp_path, url, first_refresh)

    first = run(config)
    assert first.returncode == 0, first.stdout + first.stderr
    time.sleep(1.1)  # the access token the first run got has expired
    second = run(config)
    assert second.returncode == 0, second.stdout + second.stderr

    stats = sandbox.stats
    assert stats.refreshes >= 2, "each run refreshed"
    assert stats.refresh_reuses == 0 and stats.families_revoked == 0
    # The vault holds the token set encrypted: no refresh token is readable in the file.
    database = tmp_path / "state" / "interlink.db"
    raw = b"".join(p.read_bytes() for p in database.parent.glob("interlink.db*"))
    assert first_refresh.encode() not in raw
    key_file = database.parent / "secret.key"
    assert key_file.exists() and key_file.stat().st_mode & 0o077 == 0
