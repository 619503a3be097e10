"""`open_catalog`: the catalog a run reads and writes through, with its OAuth connections'
tokens kept in the vault and a guard refusing connections that are switched off.

It lives apart from the token sources so that a run whose connections use no OAuth
imports neither the vault nor SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping

from interlink.config import InterlinkConfig, OAuth2AuthConfig
from interlink.connectors import Catalog
from interlink.errors import ConnectionDisabledError
from interlink.store import Store, disabled
from interlink.types import TokenSource

__all__ = ["open_catalog"]


def open_catalog(
    config: InterlinkConfig, store: Store, *, accounts: Mapping[str, str] | None = None
) -> Catalog:
    """`Catalog(config)` with every oauth2 connection's tokens kept in the vault (those of
    the account `accounts` names for a connection), refusing a connection or account that
    is switched off (ConnectionDisabledError) when it is first used."""
    chosen = dict(accounts or {})

    def guard(connection: str) -> None:
        switch = disabled(store, connection, chosen.get(connection, ""))
        if switch is not None:
            raise ConnectionDisabledError(connection, switch.account, reason=switch.reason)

    sources: dict[str, TokenSource] = {}
    if any(isinstance(c.auth, OAuth2AuthConfig) for c in config.connections.values()):
        from ._token_source import token_sources

        sources = token_sources(config, store, accounts=chosen)
    return Catalog(config, token_sources=sources, guard=guard)
