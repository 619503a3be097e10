"""OAuth: the vault of tokens encrypted at rest, and the token sources built on it.

```python
from interlink.oauth import Vault

vault = Vault.open(store.engine)     # INTERLINK_SECRET_KEY, or .interlink/secret.key on SQLite
ciphertext = vault.encrypt_json(token_set)
```

Tokens are stored in `interlink_oauth_tokens` as Fernet ciphertext (`interlink.store`
keeps them, never the plaintext); `interlink secrets rotate` re-encrypts them under a new
key. `cryptography` is imported only when a vault is made.
"""

from __future__ import annotations

from interlink.oauth._keys import (
    KEY_FILE_NAME,
    SECRET_KEY_ENV,
    VaultKeys,
    find_keys,
    key_file_for,
    new_key,
)
from interlink.oauth._registry import describe_connections
from interlink.oauth._rotation import Rotation, VaultStatus, rotate_secrets, vault_status
from interlink.oauth._token_source import (
    VaultTokenSource,
    open_catalog,
    seed_token,
    token_sources,
)
from interlink.oauth._vault import Vault

__all__ = [
    "KEY_FILE_NAME",
    "SECRET_KEY_ENV",
    "Rotation",
    "Vault",
    "VaultKeys",
    "VaultStatus",
    "VaultTokenSource",
    "describe_connections",
    "find_keys",
    "key_file_for",
    "new_key",
    "open_catalog",
    "rotate_secrets",
    "seed_token",
    "token_sources",
    "vault_status",
]
