"""The vault: secrets encrypted at rest with Fernet, under keys that can be rotated.

```python
vault = Vault.open(store.engine)          # keys from INTERLINK_SECRET_KEY or .interlink/secret.key
ciphertext = vault.encrypt_json({"access_token": "...", "refresh_token": "..."})
token_set = vault.decrypt_json(ciphertext, where="interlink_oauth_tokens (connection 'crm')")
```

Fernet is AES-128-CBC with an HMAC-SHA256 over it: a ciphertext that was altered, or made
under another key, does not decrypt at all. The vault holds one or more keys
(MultiFernet): the first encrypts, every one decrypts, so a new key goes first, `interlink
secrets rotate` re-encrypts everything under it, and the old one can then be dropped.

When the vault first opens on a database it stores a canary there (a known value,
encrypted); every later open decrypts it, so a wrong key is one clear error at start-up and
not a failure halfway through a run. `cryptography` is imported only when a vault is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from interlink.errors import ConfigError
from interlink.store import load_canary, save_canary, stored_ciphertexts

from ._keys import SECRET_KEY_ENV, describe_database, find_keys, key_error

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

__all__ = ["CANARY_PLAINTEXT", "Vault"]

CANARY_PLAINTEXT = b"interlink vault canary 1"
"""What the canary holds; any key that decrypts the canary to this is the vault's key."""

_LOST_KEY = (
    "if that key is lost, the stored tokens cannot be read: delete the rows of "
    "interlink_oauth_tokens and interlink_vault and connect the accounts again"
)


class Vault:
    """Encrypts and decrypts secrets with Fernet keys; the first key encrypts.

    ```python
    vault = Vault([new_key, old_key], source="INTERLINK_SECRET_KEY")
    vault.decrypt(made_under_old_key)        # still readable
    vault.rotate(made_under_old_key)         # now made under new_key
    ```

    Ciphertexts are text (URL-safe base64), ready for a Text column. A ciphertext that no
    key decrypts raises ConfigError naming `where` it was stored and `source`, never a
    key; the vault's repr shows neither.
    """

    def __init__(self, keys: Sequence[str | bytes], *, source: str = SECRET_KEY_ENV) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise ValueError("a vault needs at least one key")
        self.source = source
        """Where the keys came from: SECRET_KEY_ENV or the key file's path."""
        self._fernets: list[Fernet] = [Fernet(key) for key in keys]
        self._multi: MultiFernet = MultiFernet(self._fernets)

    @classmethod
    def open(cls, engine: sa.Engine, environ: Mapping[str, str] | None = None) -> Vault:
        """The vault of `engine`'s database, checked against its canary (or the canary
        stored, the first time).

        The keys come from INTERLINK_SECRET_KEY in `environ` (default `os.environ`), else,
        on SQLite, from `secret.key` beside the database file, made here when missing.
        A key that cannot read what is stored raises ConfigError (exit code 2).
        """
        found = find_keys(engine, environ)
        assert found is not None  # find_keys makes the key file when it may
        vault = cls(found.keys, source=found.source)
        vault.check(engine)
        return vault

    def __repr__(self) -> str:
        return f"Vault(source={self.source!r}, keys={len(self._fernets)})"

    @property
    def key_count(self) -> int:
        return len(self._fernets)

    # -- encrypting -------------------------------------------------------------------------

    def encrypt(self, data: bytes | str) -> str:
        """`data` (text is UTF-8 encoded) encrypted under the current key."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return self._multi.encrypt(raw).decode("ascii")

    def encrypt_json(self, value: Mapping[str, Any]) -> str:
        """A JSON object encrypted under the current key."""
        return self.encrypt(orjson.dumps(dict(value)))

    def decrypt(self, ciphertext: str | bytes, *, where: str = "a stored secret") -> bytes:
        """The plaintext of `ciphertext`, made under any of the keys.

        `where` names the ciphertext for the error raised when no key decrypts it
        ("interlink_oauth_tokens (connection 'crm')").
        """
        from cryptography.fernet import InvalidToken

        try:
            return self._multi.decrypt(_bytes(ciphertext))
        except InvalidToken:
            raise self._undecryptable(where) from None

    def decrypt_text(self, ciphertext: str | bytes, *, where: str = "a stored secret") -> str:
        return self.decrypt(ciphertext, where=where).decode("utf-8")

    def decrypt_json(
        self, ciphertext: str | bytes, *, where: str = "a stored secret"
    ) -> dict[str, Any]:
        """The JSON object encrypted in `ciphertext`."""
        plaintext = self.decrypt(ciphertext, where=where)
        try:
            value = orjson.loads(plaintext)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            # It decrypted, so it was made with our key: a program wrote something else.
            raise ValueError(f"{where}: the decrypted value is not a JSON object")
        return value

    def rotate(self, ciphertext: str | bytes, *, where: str = "a stored secret") -> str:
        """`ciphertext` re-encrypted under the current key (its plaintext unchanged)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._multi.rotate(_bytes(ciphertext)).decode("ascii")
        except InvalidToken:
            raise self._undecryptable(where) from None

    def is_current(self, ciphertext: str | bytes) -> bool:
        """True when `ciphertext` was made under the current (first) key."""
        from cryptography.fernet import InvalidToken

        try:
            self._fernets[0].decrypt(_bytes(ciphertext))
        except InvalidToken:
            return False
        return True

    def readable(self, ciphertext: str | bytes) -> bool:
        """True when some key of the vault decrypts `ciphertext`."""
        from cryptography.fernet import InvalidToken

        try:
            self._multi.decrypt(_bytes(ciphertext))
        except InvalidToken:
            return False
        return True

    def _undecryptable(self, where: str) -> ConfigError:
        keys = "its key" if len(self._fernets) == 1 else f"any of its {len(self._fernets)} keys"
        return key_error(
            self.source,
            f"{where}: cannot be decrypted with {keys}: it was encrypted under another key "
            f"(or altered). Add the key it was made with to {SECRET_KEY_ENV}, after the "
            f"current one; {_LOST_KEY}",
        )

    # -- the canary -------------------------------------------------------------------------

    def check(self, engine: sa.Engine) -> None:
        """Decrypt the database's canary with these keys; store one when there is none
        yet. A wrong key raises ConfigError naming the database and what to do."""
        stored = load_canary(engine)
        if stored is None:
            self._check_stored_tokens(engine)
            with engine.begin() as conn:
                if save_canary(conn, self.encrypt(CANARY_PLAINTEXT)):
                    return
                stored = load_canary(conn)  # another process stored one first: check it
            assert stored is not None
        from cryptography.fernet import InvalidToken

        try:
            plaintext: bytes | None = self._multi.decrypt(_bytes(stored))
        except InvalidToken:
            plaintext = None
        if plaintext != CANARY_PLAINTEXT:
            raise self._wrong_key(engine, "interlink_vault's canary")

    def _check_stored_tokens(self, engine: sa.Engine) -> None:
        """Tokens without a canary (it was deleted): check the first before a canary made
        with these keys vouches for them."""
        for stored in stored_ciphertexts(engine)[:1]:
            if not self.readable(stored.ciphertext):
                raise self._wrong_key(engine, stored.where)

    def _wrong_key(self, engine: sa.Engine, what: str) -> ConfigError:
        keys = "this key" if len(self._fernets) == 1 else f"these {len(self._fernets)} keys"
        return key_error(
            self.source,
            f"{keys} cannot decrypt the vault of {describe_database(engine)} ({what} was "
            f"encrypted under another key). Set {SECRET_KEY_ENV} to the key the vault was "
            f"made with (several: comma-separated, the current one first); {_LOST_KEY}",
        )


def _bytes(ciphertext: str | bytes) -> bytes:
    return ciphertext.encode("ascii", "replace") if isinstance(ciphertext, str) else ciphertext
