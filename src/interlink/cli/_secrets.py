"""`interlink secrets rotate | status | new-key`: the vault's keys and what they encrypt.

The vault (stored OAuth tokens) is encrypted under the keys of INTERLINK_SECRET_KEY, or of
`secret.key` beside an SQLite database. To change the key without downtime: put a new key
(`interlink secrets new-key`) first and the old one after it, restart, run `interlink
secrets rotate`, then drop the old key. No command ever prints a stored secret; `new-key`
prints the key it makes, on stdout alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from interlink.cli._options import ConfigOption, load_settings

if TYPE_CHECKING:
    from interlink.store import Store

__all__ = ["register"]

secrets_app = typer.Typer(
    help="The vault's keys: re-encrypt under a new key, show where it stands, make a key.",
    no_args_is_help=True,
)


def _store(ctx: typer.Context, config: Any) -> Store:
    from interlink.store import Store

    return Store.open(load_settings(ctx, config).database)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@secrets_app.command("rotate")
def rotate(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Re-encrypt every stored secret under the current (first) key, in one transaction."""
    from interlink.oauth import Vault, rotate_secrets

    store = _store(ctx, config)
    try:
        vault = Vault.open(store.engine)
        rotation = rotate_secrets(store.engine, vault)
    finally:
        store.close()
    canary = " and the canary" if rotation.total > rotation.tokens else ""
    typer.echo(
        f"{rotation.database}: re-encrypted {_plural(rotation.tokens, 'token')}{canary} under the "
        f"first key of {vault.source}."
    )
    if vault.key_count > 1:
        typer.echo(
            f"The other {_plural(vault.key_count - 1, 'key')} of {vault.source} can now be "
            "removed (once every interlink process runs with the new key first)."
        )


@secrets_app.command("status")
def status(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Show where the keys come from and which key each stored secret is under."""
    from interlink.oauth import Vault, find_keys, key_file_for, vault_status

    store = _store(ctx, config)
    try:
        found = find_keys(store.engine, create=False)
        vault = None if found is None else Vault(found.keys, source=found.source)
        state = vault_status(store.engine, vault)
        key_file = key_file_for(store.engine)
    finally:
        store.close()
    tokens = state.counts.get("interlink_oauth_tokens", 0)
    canary = state.counts.get("interlink_vault", 0)
    typer.echo(f"database    {state.database}")
    if state.source is None:
        typer.echo(f"keys        none yet; made on first use: {key_file}")
    else:
        typer.echo(f"keys        {state.source} ({_plural(state.keys, 'key')}, the first encrypts)")
    typer.echo(f"stored      {_plural(tokens, 'token')}, {'a canary' if canary else 'no canary'}")
    if state.source is not None:
        typer.echo(f"current key {state.current}")
        typer.echo(f"older keys  {state.older}")
        typer.echo(f"unreadable  {state.unreadable}")
    if state.unreadable:
        verdict = (
            f"{state.unreadable} stored values cannot be decrypted with these keys: add the "
            "key they were encrypted with"
        )
    elif state.older:
        verdict = (
            f"{state.older} stored values are under an older key: run `interlink secrets rotate`"
        )
    elif state.source is None:
        verdict = "empty"
    else:
        verdict = "ok"
    typer.echo(f"status      {verdict}")


@secrets_app.command("new-key")
def new_key_() -> None:
    """Print a new random key for INTERLINK_SECRET_KEY."""
    from interlink.oauth import new_key

    typer.echo(
        "A new Fernet key. Put it first in INTERLINK_SECRET_KEY (comma-separated, old keys "
        "after it) in every interlink process, then run `interlink secrets rotate`:",
        err=True,
    )
    typer.echo(new_key())


def register(app: typer.Typer) -> None:
    """Add the `secrets` command group to `app`."""
    app.add_typer(secrets_app, name="secrets")
