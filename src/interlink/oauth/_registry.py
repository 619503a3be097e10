"""What each connection of interlink.yaml is, and the state of its stored tokens.

```python
for connection in describe_connections(config, store.engine):
    print(connection["name"], connection["auth"], connection["accounts"])
```

The first piece of the registry of issue 13 (listing); enabling, disabling and
disconnecting come with the "connect your account" flow. Nothing secret is read: the
vault's listing carries no ciphertext, and the vault is never opened.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.store import TokenInfo, list_tokens

__all__ = ["describe_connections"]


def describe_connections(config: InterlinkConfig, engine: sa.Engine) -> list[dict[str, Any]]:
    """Every connection, in interlink.yaml's order: its name, auth type and, for `oauth2`
    connections, each stored account (status, token expiry, last change, last error)."""
    stored: dict[str, list[TokenInfo]] = {}
    for info in list_tokens(engine):
        stored.setdefault(info.connection, []).append(info)
    described: list[dict[str, Any]] = []
    for name, connection in config.connections.items():
        described.append(
            {
                "name": name,
                "auth": connection.auth.type,
                "accounts": [
                    {
                        "account": info.account,
                        "status": info.status,
                        "expires_at": info.expires_at,
                        "updated_at": info.updated_at,
                        "last_error": info.last_error,
                    }
                    for info in stored.get(name, [])
                ],
            }
        )
    return described
