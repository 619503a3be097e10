"""Where the vault's keys come from: INTERLINK_SECRET_KEY, or a key file beside SQLite.

```
INTERLINK_SECRET_KEY=<new key>,<old key>     # one or more Fernet keys; the first encrypts
.interlink/secret.key                        # else, on SQLite: made on first use, mode 0600
```

On PostgreSQL the key must come from the environment: the server and every worker, on
whatever machine, need the same key, and a file made by one of them would help no other.
A key file is never made while the database already holds encrypted values (that would
hide a lost key behind a new one), and never read when group or others may read it.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from interlink.errors import ConfigError
from interlink.store import count_ciphertexts

__all__ = [
    "KEY_FILE_NAME",
    "SECRET_KEY_ENV",
    "VaultKeys",
    "describe_database",
    "find_keys",
    "key_error",
    "key_file_for",
    "new_key",
    "parse_keys",
]

SECRET_KEY_ENV = "INTERLINK_SECRET_KEY"
"""The environment variable that holds the vault's keys, comma-separated, current first."""
KEY_FILE_NAME = "secret.key"
"""The key file made beside an SQLite database when SECRET_KEY_ENV is not set."""

NEW_KEY_HINT = (
    'make one with `interlink secrets new-key` (or python -c "from cryptography.fernet '
    'import Fernet; print(Fernet.generate_key().decode())")'
)
_SEPARATORS = re.compile(r"[,\s]+")
_FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")


@dataclass(frozen=True)
class VaultKeys:
    """The vault's keys, the current one first, and where they came from."""

    keys: tuple[bytes, ...]
    source: str
    """SECRET_KEY_ENV, or the key file's path: what messages name. Never a key."""
    file: Path | None = None
    """The key file they were read from (or made in); None when from the environment."""

    def __repr__(self) -> str:
        return f"VaultKeys(source={self.source!r}, keys={len(self.keys)})"


def new_key() -> str:
    """A new random Fernet key (32 bytes, URL-safe base64) as text."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def key_error(source: str, message: str) -> ConfigError:
    """A ConfigError about the keys of `source`: the environment variable (as its key) or
    the key file (as its file)."""
    if source == SECRET_KEY_ENV:
        return ConfigError(message, key=source)
    return ConfigError(message, file=source)


def parse_keys(text: str, source: str, *, file: Path | None = None) -> tuple[bytes, ...]:
    """The keys written in `text` (separated by commas or white space), each checked to be
    a Fernet key; an error names which one is not (by its place, never its value)."""
    from cryptography.fernet import Fernet

    found = [part for part in _SEPARATORS.split(text.strip()) if part]
    if not found:
        where = "the file is empty" if file is not None else "it is set but empty"
        raise key_error(source, f"no key: {where}; {NEW_KEY_HINT}")
    keys = []
    for place, key in enumerate(found, 1):
        try:
            if not _FERNET_KEY.fullmatch(key):
                raise ValueError("not 32 bytes in URL-safe base64")
            Fernet(key)
        except ValueError:
            raise key_error(
                source,
                f"key {place} of {len(found)} is not a Fernet key (32 random bytes in "
                f"URL-safe base64: 44 characters ending in '='); {NEW_KEY_HINT}",
            ) from None
        keys.append(key.encode("ascii"))
    return tuple(keys)


def describe_database(engine: sa.Engine) -> str:
    """The database for a message: the SQLite file, or the URL without password or query."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.set(drivername=url.get_backend_name(), query={}).render_as_string(hide_password=True)


def key_file_for(engine: sa.Engine) -> Path | None:
    """Where the key file of `engine`'s database is (`secret.key` beside an SQLite file);
    None when it cannot have one (PostgreSQL, SQLite in memory or by URI)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    if not url.database or url.database == ":memory:":
        return None
    return Path(os.path.abspath(url.database)).with_name(KEY_FILE_NAME)


def find_keys(
    engine: sa.Engine, environ: Mapping[str, str] | None = None, *, create: bool = True
) -> VaultKeys | None:
    """The vault's keys for `engine`'s database (see the module docstring).

    With `create`, a missing key file is made (when the database holds nothing encrypted);
    without, a missing one gives None. Anything else that leaves the vault without a
    usable key raises ConfigError with a line that says what to do.
    """
    env = os.environ if environ is None else environ
    if SECRET_KEY_ENV in env:
        return VaultKeys(parse_keys(env[SECRET_KEY_ENV], SECRET_KEY_ENV), SECRET_KEY_ENV)
    path = key_file_for(engine)
    if path is None:
        kind = (
            "on PostgreSQL it must come from there (every process needs the same key)"
            if engine.dialect.name == "postgresql"
            else "this database has no folder for a key file"
        )
        raise ConfigError(
            f"not set; the vault (stored OAuth tokens) needs a key, and {kind}: {NEW_KEY_HINT}, "
            f"then set {SECRET_KEY_ENV} to it in the environment of every interlink process",
            key=SECRET_KEY_ENV,
        )
    if path.exists():
        return VaultKeys(_read_key_file(path), str(path), path)
    if _holds_ciphertext(engine):
        # Another process may have made the key file and stored the canary since the
        # look above (it makes the file first): only a file still missing is lost.
        if path.exists():
            return VaultKeys(_read_key_file(path), str(path), path)
        raise _no_key(engine, path)
    if not create:
        return None
    try:
        _create_key_file(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot make the vault's key file: {(exc.strerror or type(exc).__name__).lower()}; "
            f"make its folder writable, or set {SECRET_KEY_ENV} ({NEW_KEY_HINT})",
            file=str(path),
        ) from None
    return VaultKeys(_read_key_file(path), str(path), path)


def _read_key_file(path: Path) -> tuple[bytes, ...]:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the vault's key file: {(exc.strerror or type(exc).__name__).lower()}",
            file=str(path),
        ) from None
    if mode & 0o077:
        raise ConfigError(
            f"the vault's key file may be read or written by group or others (mode "
            f"{mode:04o}); run `chmod 600 {path}` (and consider the key seen: rotate it)",
            file=str(path),
        )
    try:
        text = path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise ConfigError(f"cannot read the vault's key file: {reason}", file=str(path)) from None
    return parse_keys(text, str(path), file=path)


def _holds_ciphertext(engine: sa.Engine) -> bool:
    return any(count_ciphertexts(engine).values())


def _no_key(engine: sa.Engine, path: Path) -> ConfigError:
    """Encrypted values and no key file: the key was lost or moved; a new one would not
    read them."""
    counts = count_ciphertexts(engine)
    held = ", ".join(f"{table} {count}" for table, count in counts.items() if count)
    return ConfigError(
        f"{describe_database(engine)} holds encrypted values ({held} rows) but there is no "
        f"key: {SECRET_KEY_ENV} is not set and {path} does not exist. Restore that key file "
        f"(mode 0600) or set {SECRET_KEY_ENV} to the key they were encrypted with; if the key "
        "is lost, the stored tokens cannot be read: delete those rows and connect the "
        "accounts again",
        key=SECRET_KEY_ENV,
    )


def _create_key_file(path: Path) -> None:
    """Write a new key to `path`, mode 0600, unless another process got there first.

    The key goes into a file of this process's own (O_CREAT | O_EXCL, 0600), made durable,
    then linked to `path`: a link never replaces a file, and a reader never sees a key
    half written.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(new_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return  # another process made it first: use theirs
        except OSError:
            # A file system without hard links: create the file itself, still exclusively.
            _create_directly(path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_folder(path.parent)


def _create_directly(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(new_key() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Make the key file's name durable: a token stored next must not outlive its key."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
