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

from interlink.oauth._disconnect import (
    PROVIDER_SIDE_REMOVAL,
    Disconnected,
    RevocationError,
    disconnect,
)
from interlink.oauth._flow import (
    FLOW_LIFETIME,
    Connected,
    ConnectError,
    ConnectFlows,
    Ticket,
    connect_settings,
    start_url,
)
from interlink.oauth._keys import (
    KEY_FILE_NAME,
    SECRET_KEY_ENV,
    VaultKeys,
    find_keys,
    key_file_for,
    new_key,
)
from interlink.oauth._registry import (
    FAILED_RUN_STATUSES,
    SUCCEEDED_RUN_STATUSES,
    connection_pipelines,
    describe_connections,
)
from interlink.oauth._rotation import Rotation, VaultStatus, rotate_secrets, vault_status
from interlink.oauth._switching import (
    MAX_REASON,
    AccountNotConnectedError,
    Switched,
    UnknownConnectionError,
    check_target,
    switch_off,
    switch_on,
)
from interlink.oauth._token_source import (
    VaultTokenSource,
    open_catalog,
    seed_token,
    token_sources,
)
from interlink.oauth._vault import Vault

__all__ = [
    "FLOW_LIFETIME",
    "ConnectError",
    "ConnectFlows",
    "Connected",
    "Ticket",
    "connect_settings",
    "start_url",
    "KEY_FILE_NAME",
    "SECRET_KEY_ENV",
    "Rotation",
    "Vault",
    "VaultKeys",
    "VaultStatus",
    "VaultTokenSource",
    "describe_connections",
    "FAILED_RUN_STATUSES",
    "MAX_REASON",
    "PROVIDER_SIDE_REMOVAL",
    "SUCCEEDED_RUN_STATUSES",
    "AccountNotConnectedError",
    "Disconnected",
    "RevocationError",
    "Switched",
    "UnknownConnectionError",
    "check_target",
    "connection_pipelines",
    "disconnect",
    "switch_off",
    "switch_on",
    "find_keys",
    "key_file_for",
    "new_key",
    "open_catalog",
    "rotate_secrets",
    "seed_token",
    "token_sources",
    "vault_status",
]
