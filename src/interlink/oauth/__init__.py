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

import typing as _typing

from interlink._lazy import lazy_exports as _lazy_exports
from interlink.oauth._catalog import open_catalog

if _typing.TYPE_CHECKING:
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
    from interlink.oauth._rotation import (
        Rotation,
        VaultStatus,
        rotate_secrets,
        vault_status,
    )
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
        seed_token,
        token_sources,
    )
    from interlink.oauth._vault import (
        Vault,
    )

# Loaded on first use: a run whose connections use no OAuth needs none of them (nor
# SQLAlchemy, which they load).
_LAZY = {
    "PROVIDER_SIDE_REMOVAL": "interlink.oauth._disconnect",
    "Disconnected": "interlink.oauth._disconnect",
    "RevocationError": "interlink.oauth._disconnect",
    "disconnect": "interlink.oauth._disconnect",
    "FLOW_LIFETIME": "interlink.oauth._flow",
    "Connected": "interlink.oauth._flow",
    "ConnectError": "interlink.oauth._flow",
    "ConnectFlows": "interlink.oauth._flow",
    "Ticket": "interlink.oauth._flow",
    "connect_settings": "interlink.oauth._flow",
    "start_url": "interlink.oauth._flow",
    "KEY_FILE_NAME": "interlink.oauth._keys",
    "SECRET_KEY_ENV": "interlink.oauth._keys",
    "VaultKeys": "interlink.oauth._keys",
    "find_keys": "interlink.oauth._keys",
    "key_file_for": "interlink.oauth._keys",
    "new_key": "interlink.oauth._keys",
    "FAILED_RUN_STATUSES": "interlink.oauth._registry",
    "SUCCEEDED_RUN_STATUSES": "interlink.oauth._registry",
    "connection_pipelines": "interlink.oauth._registry",
    "describe_connections": "interlink.oauth._registry",
    "Rotation": "interlink.oauth._rotation",
    "VaultStatus": "interlink.oauth._rotation",
    "rotate_secrets": "interlink.oauth._rotation",
    "vault_status": "interlink.oauth._rotation",
    "MAX_REASON": "interlink.oauth._switching",
    "AccountNotConnectedError": "interlink.oauth._switching",
    "Switched": "interlink.oauth._switching",
    "UnknownConnectionError": "interlink.oauth._switching",
    "check_target": "interlink.oauth._switching",
    "switch_off": "interlink.oauth._switching",
    "switch_on": "interlink.oauth._switching",
    "VaultTokenSource": "interlink.oauth._token_source",
    "seed_token": "interlink.oauth._token_source",
    "token_sources": "interlink.oauth._token_source",
    "Vault": "interlink.oauth._vault",
}


__getattr__ = _lazy_exports(__name__, _LAZY)


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
