"""The vault (issue 13, section 2): Fernet round trips, rotation over two keys, where the
key comes from (INTERLINK_SECRET_KEY, or a 0600 key file beside SQLite), a wrong or
missing key found early with one clear line, and no plaintext secret in the database."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlink.errors import ConfigError
from interlink.oauth import (
    KEY_FILE_NAME,
    SECRET_KEY_ENV,
    Vault,
    new_key,
    rotate_secrets,
    vault_status,
)
from interlink.store import (
    Store,
    load_canary,
    load_token,
    mark_needs_reauth,
    save_token,
    stored_ciphertexts,
)
from tests.jobs.procrastinate_schema import fresh_schema

ACCESS = "at-SECRET-4c1f9e2a7b"
REFRESH = "rt-SECRET-8d3e5f7a9c"
ID_TOKEN = "idt-SECRET-0b2d4f6e8a"
TOKENS = "interlink_oauth_tokens"


def token_set(access: str = ACCESS, refresh: str = REFRESH) -> dict[str, object]:
    return {
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": 1_700_003_600.0,
        "token_type": "Bearer",
        "scope": "read write",
        "raw": {"access_token": access, "refresh_token": refresh, "id_token": ID_TOKEN},
    }


def env(*keys: str) -> dict[str, str]:
    return {SECRET_KEY_ENV: ",".join(keys)}


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A store on an SQLite file in its own folder (the key file goes beside it)."""
    folder = tmp_path / "data"
    folder.mkdir()
    store = Store.open(f"sqlite:///{folder / 'interlink.db'}")
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'vault.db'}")
        yield opened
        opened.close()
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_vault") as url:
        opened = Store.open(url)
        yield opened
        opened.close()


def save(store: Store, vault: Vault, connection: str, account: str = "", **kw: str) -> None:
    with store.transaction() as conn:
        save_token(
            conn,
            connection,
            account,
            vault.encrypt_json(token_set(**kw)),
            1_700_003_600.0,
            expected_version=None,
        )


def read(store: Store, vault: Vault, connection: str, account: str = "") -> dict[str, object]:
    stored = load_token(store.engine, connection, account)
    assert stored is not None
    return vault.decrypt_json(stored.ciphertext, where=stored.where)


# -- encrypting ------------------------------------------------------------------------------


def test_bytes_text_and_json_round_trip():
    vault = Vault([new_key()])
    for data in (b"\x00\xffbinary", "text with é", ""):
        ciphertext = vault.encrypt(data)
        assert isinstance(ciphertext, str) and ciphertext.isascii()
        expected = data.encode() if isinstance(data, str) else data
        assert vault.decrypt(ciphertext) == expected
    assert vault.decrypt_text(vault.encrypt("é")) == "é"
    assert vault.decrypt_json(vault.encrypt_json(token_set())) == token_set()
    # A fresh IV every time: equal plaintexts do not give equal ciphertexts.
    assert vault.encrypt(ACCESS) != vault.encrypt(ACCESS)
    assert ACCESS not in vault.encrypt(ACCESS)


def test_the_vault_never_shows_its_keys():
    key = new_key()
    vault = Vault([key, new_key()], source=SECRET_KEY_ENV)
    assert repr(vault) == "Vault(source='INTERLINK_SECRET_KEY', keys=2)"
    assert key not in repr(vault) and key not in str(vault.__dict__.get("source"))


def test_an_altered_ciphertext_is_a_clear_error_not_invalid_token():
    vault = Vault([new_key()])
    ciphertext = vault.encrypt_json(token_set())
    altered = ciphertext[:-6] + ("A" if ciphertext[-6] != "A" else "B") + ciphertext[-5:]
    for bad in (altered, "not a fernet token", "é"):
        with pytest.raises(ConfigError) as caught:
            vault.decrypt_json(bad, where="interlink_oauth_tokens (connection 'crm')")
        error = caught.value
        assert str(error).startswith(
            "INTERLINK_SECRET_KEY: interlink_oauth_tokens (connection 'crm'): cannot be "
            "decrypted with its key"
        )
        assert error.exit_code == 2
        assert error.__cause__ is None and error.__suppress_context__


# -- rotation --------------------------------------------------------------------------------


def test_rotation_with_two_keys(store):
    old, new = new_key(), new_key()
    first = Vault.open(store.engine, env(old))
    save(store, first, "crm")
    save(store, first, "billing", "acme", access="at-2", refresh="rt-2")

    both = Vault.open(store.engine, env(new, old))  # the canary is under the old key: fine
    assert read(store, both, "crm") == token_set()  # old data readable
    before = vault_status(store.engine, both)
    assert (before.current, before.older, before.unreadable) == (0, 3, 0)

    rotation = rotate_secrets(store.engine, both)
    assert rotation.counts == {TOKENS: 2, "interlink_vault": 1} and rotation.tokens == 2
    after = vault_status(store.engine, both)
    assert (after.current, after.older, after.unreadable) == (3, 0, 0)
    assert load_token(store.engine, "crm", "").version == 1  # same token, same version

    only_new = Vault.open(store.engine, env(new))
    assert read(store, only_new, "crm") == token_set()
    assert read(store, only_new, "billing", "acme") == token_set("at-2", "rt-2")
    only_old = Vault([old])
    assert all(not only_old.readable(row.ciphertext) for row in stored_ciphertexts(store.engine))
    with pytest.raises(ConfigError, match="cannot decrypt the vault"):
        Vault.open(store.engine, env(old))


def test_rotation_stops_at_a_ciphertext_no_key_reads_and_changes_nothing(store):
    old, new, foreign = new_key(), new_key(), new_key()
    vault = Vault.open(store.engine, env(old))
    save(store, vault, "crm")
    save(store, Vault([foreign]), "stray")
    before = stored_ciphertexts(store.engine)
    with pytest.raises(ConfigError) as caught:
        rotate_secrets(store.engine, Vault.open(store.engine, env(new, old)))
    assert "interlink_oauth_tokens (connection 'stray'): cannot be decrypted" in str(caught.value)
    assert stored_ciphertexts(store.engine) == before


# -- where the key comes from ----------------------------------------------------------------


def test_a_key_file_is_made_0600_beside_sqlite_and_used_again(sqlite_store):
    folder = Path(sqlite_store.engine.url.database).parent
    key_file = folder / KEY_FILE_NAME
    assert not key_file.exists()
    vault = Vault.open(sqlite_store.engine, {})
    assert vault.source == str(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) == 44 and "," not in key
    assert sorted(p.name for p in folder.iterdir() if "secret" in p.name) == [KEY_FILE_NAME]
    save(sqlite_store, vault, "crm")

    again = Vault.open(sqlite_store.engine, {})
    assert read(sqlite_store, again, "crm") == token_set()
    assert key_file.read_text().strip() == key
    assert read(sqlite_store, Vault([key]), "crm") == token_set()


def test_interlink_secret_key_wins_over_the_key_file(sqlite_store):
    Vault.open(sqlite_store.engine, {})  # makes the key file, and the canary under it
    key = new_key()
    with pytest.raises(ConfigError, match="^INTERLINK_SECRET_KEY: this key cannot decrypt"):
        Vault.open(sqlite_store.engine, env(key))
    file_key = (Path(sqlite_store.engine.url.database).parent / KEY_FILE_NAME).read_text()
    assert Vault.open(sqlite_store.engine, env(key, file_key.strip())).key_count == 2


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_is_refused(sqlite_store, mode):
    key_file = Path(sqlite_store.engine.url.database).parent / KEY_FILE_NAME
    key = new_key()
    key_file.write_text(key + "\n")
    key_file.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        Vault.open(sqlite_store.engine, {})
    message = str(caught.value)
    assert message.startswith(f"{key_file}: ")
    assert f"(mode {mode:04o})" in message and f"run `chmod 600 {key_file}`" in message
    assert key not in message
    key_file.chmod(0o600)
    assert Vault.open(sqlite_store.engine, {}).source == str(key_file)


def test_a_lost_key_file_with_tokens_stored_is_an_error_and_no_new_key_is_made(sqlite_store):
    key_file = Path(sqlite_store.engine.url.database).parent / KEY_FILE_NAME
    save(sqlite_store, Vault.open(sqlite_store.engine, {}), "crm")
    key_file.unlink()
    with pytest.raises(ConfigError) as caught:
        Vault.open(sqlite_store.engine, {})
    message = str(caught.value)
    assert message.startswith("INTERLINK_SECRET_KEY: ")
    assert "holds encrypted values (interlink_oauth_tokens 1, interlink_vault 1 rows)" in message
    assert f"{key_file} does not exist" in message and "Restore that key file" in message
    assert not key_file.exists()


def test_a_wrong_key_is_found_when_the_vault_opens(store):
    Vault.open(store.engine, env(new_key()))
    with pytest.raises(ConfigError) as caught:
        Vault.open(store.engine, env(new_key(), new_key()))
    error = caught.value
    message = str(error)
    assert message.startswith("INTERLINK_SECRET_KEY: these 2 keys cannot decrypt the vault of ")
    assert "interlink_vault's canary was encrypted under another key" in message
    assert "Set INTERLINK_SECRET_KEY to the key the vault was made with" in message
    assert error.exit_code == 2 and error.__cause__ is None and error.__context__ is None
    database = store.engine.url
    assert (database.database or "") in message
    assert database.password is None or str(database.password) not in message


def test_tokens_stored_without_a_canary_are_checked_before_one_is_made(store):
    """A deleted canary must not let a new key vouch for tokens it cannot read."""
    save(store, Vault([new_key()]), "crm")
    with pytest.raises(ConfigError, match=r"\(interlink_oauth_tokens \(connection 'crm'\) was"):
        Vault.open(store.engine, env(new_key()))
    assert load_canary(store.engine) is None


def test_a_token_under_another_key_names_its_row(store):
    vault = Vault.open(store.engine, env(new_key()))
    save(store, Vault([new_key()]), "crm", "acme")
    with pytest.raises(ConfigError) as caught:
        read(store, vault, "crm", "acme")
    assert (
        "interlink_oauth_tokens (connection 'crm', account 'acme'): cannot be decrypted with "
        "its key: it was encrypted under another key (or altered)"
    ) in str(caught.value)


@pytest.mark.postgres
def test_postgresql_without_a_key_is_a_config_error(postgres_url):
    with fresh_schema(postgres_url, "test_vault") as url:
        store = Store.open(url)
        try:
            with pytest.raises(ConfigError) as caught:
                Vault.open(store.engine, {})
            assert load_canary(store.engine) is None
            vault = Vault.open(store.engine, env(new_key()))
            save(store, vault, "crm")
            assert read(store, vault, "crm") == token_set()
        finally:
            store.close()
    error = caught.value
    message = str(error)
    assert error.exit_code == 2 and error.key == SECRET_KEY_ENV
    assert message.startswith("INTERLINK_SECRET_KEY: not set;")
    assert "on PostgreSQL it must come from there" in message
    assert "interlink secrets new-key" in message and "Fernet.generate_key()" in message


def test_sqlite_in_memory_without_a_key_is_a_config_error():
    store = Store.open("sqlite://")
    try:
        with pytest.raises(ConfigError, match="no folder for a key file"):
            Vault.open(store.engine, {})
    finally:
        store.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "no key: it is set but empty"),
        (" , ", "no key: it is set but empty"),
        ("not-a-key", "key 1 of 1 is not a Fernet key"),
        ("{good},tooshort", "key 2 of 2 is not a Fernet key"),
        ("{good}, {good}x", "key 2 of 2 is not a Fernet key"),
    ],
)
def test_a_bad_interlink_secret_key_says_which_key_and_never_shows_it(
    sqlite_store, value, expected
):
    text = value.format(good=new_key())
    with pytest.raises(ConfigError) as caught:
        Vault.open(sqlite_store.engine, {SECRET_KEY_ENV: text})
    message = str(caught.value)
    assert message.startswith(f"INTERLINK_SECRET_KEY: {expected}")
    for part in text.split(","):
        if part.strip():
            assert part.strip() not in message
    assert not (Path(sqlite_store.engine.url.database).parent / KEY_FILE_NAME).exists()


def test_keys_may_be_separated_by_commas_spaces_or_lines(sqlite_store):
    old, new = new_key(), new_key()
    save(sqlite_store, Vault.open(sqlite_store.engine, env(old)), "crm")
    for text in (f"{new},{old}", f" {new} , {old} ", f"{new}\n{old}\n"):
        vault = Vault.open(sqlite_store.engine, {SECRET_KEY_ENV: text})
        assert vault.key_count == 2 and read(sqlite_store, vault, "crm") == token_set()


# -- no plaintext at rest --------------------------------------------------------------------


def test_no_plaintext_secret_in_the_sqlite_file(sqlite_store):
    path = Path(sqlite_store.engine.url.database)
    vault = Vault.open(sqlite_store.engine, {})
    save(sqlite_store, vault, "crm")
    save(sqlite_store, vault, "billing", "acme")
    # A control written in clear, to prove the search sees what is in the file.
    with sqlite_store.transaction() as conn:
        mark_needs_reauth(conn, "billing", "acme", "CONTROL-plaintext-7f3a")
    key = (path.parent / KEY_FILE_NAME).read_text().strip()
    # Read while the store is open: the WAL still holds every page written.
    data = path.read_bytes() + Path(f"{path}-wal").read_bytes()
    assert b"CONTROL-plaintext-7f3a" in data
    for secret in (ACCESS, REFRESH, ID_TOKEN, key):
        assert secret.encode() not in data, secret
    assert read(sqlite_store, vault, "crm") == token_set()


# -- several processes, and the cost of importing --------------------------------------------

OPENER = """
import sys, time
from pathlib import Path
from interlink.oauth import Vault
from interlink.store import Store
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
store = Store.open(sys.argv[1])
vault = Vault.open(store.engine, {})
print(vault.decrypt(vault.encrypt(b"ok")).decode())
store.close()
"""


def test_processes_opening_a_new_database_at_once_agree_on_one_key(tmp_path):
    """Sixteen processes find no key file at the same moment: one key file is made, and the
    canary every one of them checks was made under it."""
    url = f"sqlite:///{tmp_path / 'interlink.db'}"
    go = tmp_path / "go"
    environ = {k: v for k, v in os.environ.items() if k != SECRET_KEY_ENV}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, url, str(go)],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(16)
    ]
    go.touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 16, outputs
    assert all(out.strip() == "ok" for out, _ in outputs)
    assert [p.name for p in tmp_path.iterdir() if "secret" in p.name] == [KEY_FILE_NAME]


def test_importing_interlink_oauth_does_not_import_cryptography():
    code = "import sys, interlink.oauth; print('cryptography' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
