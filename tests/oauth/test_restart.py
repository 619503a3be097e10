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
from tests.jobs.procrastinate_schema import fresh_schema

CLIENT, SECRET = "provider-client", "provider-secret"


@pytest.fixture
def provider() -> Iterator[tuple[OAuthProvider, str]]:
    provider = OAuthProvider(access_token_lifetime=1)
    with SandboxServer(create_oauth_provider_app(provider)) as server:
        yield provider, server.url


def project(tmp_path: Path, url: str, refresh_token: str, database: str | None = None) -> Path:
    path = tmp_path / "interlink.yaml"
    (tmp_path / "state").mkdir()
    path.write_text(
        yaml.safe_dump(
            {
                "database": database or f"sqlite:///{tmp_path / 'state' / 'interlink.db'}",
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


def read(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from interlink.cli.main import main; main()",
            "read",
            "provider.customers",
            "--limit",
            "5",
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_vault_race") as url:
        yield url


def test_processes_starting_at_once_refresh_once(
    tmp_path: Path, database: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three processes, five requests each, find the token expired at the same moment: one
    refreshes, the others wait for it under the vault's lock (a lock file beside SQLite, an
    advisory lock on PostgreSQL) and use its token. Without the lock each sends the same
    refresh token, and the provider revokes the grant."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("INTERLINK_SECRET_KEY", Fernet.generate_key().decode())
    sandbox = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(sandbox)) as server:
        first_refresh = sandbox.grant(CLIENT, "acct_1001")["refresh_token"]
        config = project(tmp_path, server.url, first_refresh, database)
        start = time.time() + 4  # every racer has imported and opened the vault by then
        racer = Path(__file__).with_name("refresh_racer.py")
        running = [
            subprocess.Popen(
                [sys.executable, str(racer), str(config), str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=120) for p in running]
        assert time.time() > start, "the racers did not wait for the start"
        assert [p.returncode for p in running] == [0, 0, 0], outputs
        assert sandbox.stats.refreshes == 1
        assert sandbox.stats.refresh_reuses == 0 and sandbox.stats.families_revoked == 0


def test_a_refused_grant_marks_the_connection_for_reconnecting(tmp_path: Path) -> None:
    sandbox = OAuthProvider(access_token_lifetime=3600)
    with SandboxServer(create_oauth_provider_app(sandbox)) as server:
        grant = sandbox.grant(CLIENT, "acct_1001")
        config = project(tmp_path, server.url, grant["refresh_token"])
        client = next(c for c in sandbox.clients.values() if c.client_id == CLIENT)
        sandbox.revoke(client, grant["refresh_token"])  # the user disconnected the app

        refused = run(config)
        assert refused.returncode != 0
        assert "invalid_grant" in refused.stdout + refused.stderr
        asked = sandbox.stats.invalid_grants
        assert asked >= 1

        again = run(config)
        assert again.returncode != 0
        shown = again.stdout + again.stderr
        assert "must be connected again" in shown, shown
        assert sandbox.stats.invalid_grants == asked, "the provider was asked again"

        # A new grant in interlink.yaml starts afresh.
        fresh = sandbox.grant(CLIENT, "acct_1001")["refresh_token"]
        config = project_again(tmp_path, server.url, fresh)
        assert run(config).returncode == 0


def project_again(tmp_path: Path, url: str, refresh_token: str) -> Path:
    (tmp_path / "interlink.yaml").unlink()
    (tmp_path / "state").rename(tmp_path / "state-kept")
    path = project(tmp_path, url, refresh_token)
    (tmp_path / "state").rmdir()
    (tmp_path / "state-kept").rename(tmp_path / "state")
    return path
