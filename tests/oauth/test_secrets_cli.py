"""`interlink secrets rotate | status | new-key`, through the CLI on SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli.main import app
from interlink.oauth import KEY_FILE_NAME, SECRET_KEY_ENV, Vault, new_key
from interlink.store import Store, load_token, save_token, stored_ciphertexts

SECRET = "rt-SECRET-cli-5a7c9e1b"


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    database = f"sqlite:///{tmp_path / 'state.db'}"
    config = tmp_path / "interlink.yaml"
    config.write_text(f"database: {database}\n")
    return config, database


def invoke(config: Path, *args: str, key: str | None = None):
    return CliRunner().invoke(app, ["secrets", *args, "-c", str(config)], env={SECRET_KEY_ENV: key})


def store_tokens(database: str, vault_keys: str, *connections: str) -> None:
    store = Store.open(database)
    try:
        vault = Vault.open(store.engine, {SECRET_KEY_ENV: vault_keys})
        for connection in connections:
            with store.transaction() as conn:
                ciphertext = vault.encrypt_json({"refresh_token": SECRET})
                save_token(conn, connection, "", ciphertext, None, expected_version=None)
    finally:
        store.close()


def test_rotate_then_the_old_key_can_go(project):
    config, database = project
    old, new = new_key(), new_key()
    store_tokens(database, old, "crm", "billing")

    rotated = invoke(config, "rotate", key=f"{new},{old}")
    assert rotated.exit_code == 0, rotated.output
    lines = rotated.stdout.splitlines()
    assert lines[0].endswith(
        "state.db: re-encrypted 2 tokens and the canary under the first key of "
        "INTERLINK_SECRET_KEY."
    )
    assert lines[1].startswith("The other 1 key of INTERLINK_SECRET_KEY can now be removed")

    status = invoke(config, "status", key=new)
    assert status.exit_code == 0, status.output
    assert "keys        INTERLINK_SECRET_KEY (1 key, the first encrypts)" in status.stdout
    assert "stored      2 tokens, a canary" in status.stdout
    assert "current key 3" in status.stdout and "older keys  0" in status.stdout
    assert status.stdout.rstrip().endswith("status      ok")
    for result in (rotated, status):
        assert new not in result.output and old not in result.output
        assert SECRET not in result.output
    store = Store.open(database)
    try:
        vault = Vault.open(store.engine, {SECRET_KEY_ENV: new})
        stored = load_token(store.engine, "crm", "")
        assert vault.decrypt_json(stored.ciphertext) == {"refresh_token": SECRET}
    finally:
        store.close()


def test_status_tells_to_rotate_when_values_are_under_an_older_key(project):
    config, database = project
    old, new = new_key(), new_key()
    store_tokens(database, old, "crm")
    status = invoke(config, "status", key=f"{new},{old}")
    assert "current key 0" in status.stdout and "older keys  2" in status.stdout
    assert "2 stored values are under an older key: run `interlink secrets rotate`" in (
        status.stdout
    )


def test_rotate_refuses_in_one_line_when_a_token_cannot_be_decrypted(project):
    config, database = project
    old, new, foreign = new_key(), new_key(), new_key()
    store_tokens(database, old, "crm")
    store = Store.open(database)
    try:
        with store.transaction() as conn:
            stray = Vault([foreign]).encrypt_json({"refresh_token": SECRET})
            save_token(conn, "stray", "acct", stray, None, expected_version=None)
        before = stored_ciphertexts(store.engine)
    finally:
        store.close()

    rotated = invoke(config, "rotate", key=f"{new},{old}")
    assert rotated.exit_code == 2
    assert rotated.stdout == ""
    assert len(rotated.stderr.splitlines()) == 1
    assert rotated.stderr.startswith(
        "INTERLINK_SECRET_KEY: interlink_oauth_tokens (connection 'stray', account 'acct'): "
        "cannot be decrypted with any of its 2 keys"
    )
    assert "Traceback" not in rotated.output and "InvalidToken" not in rotated.output
    store = Store.open(database)
    try:
        assert stored_ciphertexts(store.engine) == before  # nothing was rewritten
    finally:
        store.close()


def test_a_wrong_key_is_one_line_and_exit_2(project):
    config, database = project
    store_tokens(database, new_key(), "crm")
    for command in ("rotate", "status"):
        result = invoke(config, command, key=new_key())
        if command == "status":  # status reports instead of refusing
            assert result.exit_code == 0
            assert "unreadable  2" in result.stdout
            assert "2 stored values cannot be decrypted with these keys" in result.stdout
            continue
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
        assert "cannot decrypt the vault of" in result.stderr


def test_status_before_any_key_makes_no_key_file(project):
    config, _ = project
    status = invoke(config, "status")
    assert status.exit_code == 0, status.output
    key_file = config.parent / KEY_FILE_NAME
    assert f"keys        none yet; made on first use: {key_file}" in status.stdout
    assert "stored      0 tokens, no canary" in status.stdout
    assert not key_file.exists()
    rotated = invoke(config, "rotate")  # the first use: the key file is made
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 0 tokens and the canary" in rotated.stdout
    assert key_file.exists()


def test_new_key_prints_a_key_alone_on_stdout():
    result = CliRunner().invoke(app, ["secrets", "new-key"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert "\n" not in key and len(key) == 44
    assert Vault([key]).decrypt(Vault([key]).encrypt(b"x")) == b"x"
    assert "INTERLINK_SECRET_KEY" in result.stderr and key not in result.stderr
