"""Key rotation and the vault's state: `interlink secrets rotate` and `secrets status`.

Rotating a key without downtime:

1. make a key (`interlink secrets new-key`) and put it first in INTERLINK_SECRET_KEY (or in
   `secret.key`), the old key after it, in every process: new values are encrypted under
   the new key, and old ones still decrypt;
2. `interlink secrets rotate`: every stored ciphertext re-encrypted under the new key, in
   one transaction;
3. drop the old key.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from interlink.store import count_ciphertexts, rewrite_ciphertexts, stored_ciphertexts

from ._keys import describe_database
from ._vault import Vault

__all__ = ["Rotation", "VaultStatus", "rotate_secrets", "vault_status"]


@dataclass(frozen=True)
class Rotation:
    """What `rotate_secrets` re-encrypted: rows per table."""

    database: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def tokens(self) -> int:
        return self.counts.get("interlink_oauth_tokens", 0)


def rotate_secrets(engine: sa.Engine, vault: Vault) -> Rotation:
    """Re-encrypt every stored ciphertext under the vault's current key, in one
    transaction. One that no key decrypts raises ConfigError and changes nothing."""
    return Rotation(
        describe_database(engine),
        rewrite_ciphertexts(
            engine, lambda stored: vault.rotate(stored.ciphertext, where=stored.where)
        ),
    )


@dataclass(frozen=True)
class VaultStatus:
    """Where the vault of a database stands; never a key, never a secret."""

    database: str
    source: str | None
    """Where the keys come from; None when there is no key yet (no key file made)."""
    keys: int
    counts: dict[str, int]
    """Encrypted rows per table."""
    current: int = 0
    """Rows encrypted under the current (first) key."""
    older: int = 0
    """Rows encrypted under another key of the vault: `interlink secrets rotate` them."""
    unreadable: int = 0
    """Rows no key of the vault decrypts."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def vault_status(engine: sa.Engine, vault: Vault | None) -> VaultStatus:
    """Count the stored ciphertexts, and with a vault, which key each is under."""
    database = describe_database(engine)
    if vault is None:
        return VaultStatus(database, None, 0, count_ciphertexts(engine))
    current = older = unreadable = 0
    stored = stored_ciphertexts(engine)
    for row in stored:
        if vault.is_current(row.ciphertext):
            current += 1
        elif vault.readable(row.ciphertext):
            older += 1
        else:
            unreadable += 1
    counts = dict.fromkeys(("interlink_oauth_tokens", "interlink_vault"), 0)
    for row in stored:
        counts[row.table] += 1
    return VaultStatus(database, vault.source, vault.key_count, counts, current, older, unreadable)
