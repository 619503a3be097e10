"""The key a pipeline's runs keep their books under for the `--account` a command names:
`NAME`, or `NAME@ACCOUNT` (bindings, failed records: each account keeps its own)."""

from __future__ import annotations

from typing import Any

__all__ = ["account_key"]


def account_key(
    settings: Any, pipeline: str, chosen: Any, account: str | None, *, keeps: str
) -> tuple[str, str]:
    """The key and the account a run of `pipeline` (its settings `chosen`) acts for, given
    `--account`; ConfigError for an empty account, or for a pipeline that runs for every
    connected account when none is named (each keeps its own `keeps`)."""
    from interlink.errors import ConfigError
    from interlink.sync import ALL_ACCOUNTS, acting_account, state_key

    if account is not None and not account:
        raise ConfigError("expected an account name after --account", key="--account")
    acting = acting_account(settings, pipeline, chosen, account)
    if acting == ALL_ACCOUNTS:
        raise ConfigError(
            f"pipeline {pipeline!r} runs for every connected account, and each keeps its "
            f"own {keeps}: name one with --account",
            key="--account",
        )
    return state_key(pipeline, acting), acting
