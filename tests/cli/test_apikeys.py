"""`interlink apikeys create | list | revoke`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.store import Store, list_api_keys, verify_api_key


def write_config(tmp_path: Path) -> tuple[Path, str]:
    database = f"sqlite:///{tmp_path / 'keys.db'}"
    path = tmp_path / "interlink.yaml"
    path.write_text(f"database: {database}\n")
    return path, database


def test_create_prints_the_key_once_on_stdout_and_stores_only_its_hash(tmp_path):
    config, database = write_config(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["apikeys", "create", "ci", "--scope", "write", "-c", str(config)])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("il_") and "\n" not in secret
    assert "only time it is shown" in result.stderr and secret not in result.stderr
    store = Store.open(database)
    try:
        key = verify_api_key(store.engine, secret)
        assert key is not None and key.name == "ci" and key.scope == "write"
    finally:
        store.close()
    assert secret.encode() not in (tmp_path / "keys.db").read_bytes()

    listed = runner.invoke(app, ["apikeys", "list", "-c", str(config)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert "ci" in listed.output and key.prefix in listed.output and "write" in listed.output
    assert secret not in listed.output
    for column in ("id", "name", "prefix", "scope", "created", "last used", "revoked"):
        assert column in listed.output


def test_revoke_then_the_key_fails(tmp_path):
    config, database = write_config(tmp_path)
    runner = CliRunner()
    secret = runner.invoke(app, ["apikeys", "create", "grafana", "-c", str(config)]).stdout.strip()
    store = Store.open(database)
    try:
        key_id = list_api_keys(store.engine)[0].id
        assert list_api_keys(store.engine)[0].scope == "read"  # the default scope
        revoked = runner.invoke(app, ["apikeys", "revoke", str(key_id), "-c", str(config)])
        assert revoked.exit_code == 0 and "Revoked API key" in revoked.output
        assert verify_api_key(store.engine, secret) is None
        again = runner.invoke(app, ["apikeys", "revoke", str(key_id), "-c", str(config)])
        assert again.exit_code == 0 and "already revoked" in again.output
    finally:
        store.close()
    listed = runner.invoke(app, ["apikeys", "list", "-c", str(config)], env={"COLUMNS": "200"})
    assert "grafana" in listed.output


def test_bad_input_exits_2_with_one_line(tmp_path):
    config, _ = write_config(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["apikeys", "create", "x", "--scope", "root", "-c", str(config)])
    assert (
        result.exit_code == 2
        and "--scope" in result.stderr
        and "read, write, admin" in result.stderr
    )
    result = runner.invoke(app, ["apikeys", "revoke", "42", "-c", str(config)])
    assert result.exit_code == 2 and "no API key with id 42" in result.stderr
    empty = runner.invoke(app, ["apikeys", "list", "-c", str(config)])
    assert empty.exit_code == 0 and "No API keys yet" in empty.output
