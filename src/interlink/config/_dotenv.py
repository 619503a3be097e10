"""Read the `.env` file beside `interlink.yaml`: variables for its `${VAR}` references.

The format is the one Docker Compose, python-dotenv and most shells agree on:

```sh
# a comment
SHOP_TOKEN=s3cr3t
export CRM_URL=https://crm.example.com     # `export ` is allowed, and ignored
GREETING="hello world"                     # double quotes: \\n, \\t, \\" and \\\\ escapes
PATTERN='^a$\\d'                            # single quotes: taken as written
EMPTY=
```

A value is one line; ` #` starts a comment after an unquoted value or a closing quote.
Values are taken literally: a `${...}` inside one is not expanded. A line that is none of
the above is an error naming the file and the line, never its text (it may hold a secret).
"""

from __future__ import annotations

import re
from pathlib import Path

from interlink.errors import ConfigError

__all__ = ["DOTENV_NAME", "MAX_DOTENV", "dotenv_path", "parse_dotenv", "read_dotenv"]

DOTENV_NAME = ".env"
MAX_DOTENV = 1024 * 1024
"""The largest `.env` read: a few hundred variables fit in a small fraction of it."""

_ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_LINE_END = re.compile(r"\r\n|\r|\n")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def dotenv_path(config_path: str | Path) -> Path:
    """Where the `.env` of a config file is: in the same folder."""
    return Path(config_path).parent / DOTENV_NAME


def read_dotenv(path: str | Path) -> dict[str, str] | None:
    """The variables of the `.env` file at `path`; None when there is no such file.

    A file that exists but cannot be read, or has a malformed line, raises a `ConfigError`
    naming it (and the line); its `.errors` lists every malformed line.
    """
    file = str(path)
    try:
        with Path(path).open("rb") as handle:
            # Bounded: a log saved as `.env`, or a link to a device, is not read whole.
            raw = handle.read(MAX_DOTENV + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError("is a folder; a .env file holds KEY=VALUE lines", file=file) from None
    except PermissionError:
        raise ConfigError("cannot read the file: permission denied", file=file) from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(f"cannot read the file: {reason}", file=file) from None
    if len(raw) > MAX_DOTENV:
        raise ConfigError(
            f"larger than {MAX_DOTENV // (1024 * 1024)} MiB; a .env file holds KEY=VALUE lines",
            file=file,
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("not UTF-8 text", file=file, line=line) from None
    return parse_dotenv(text, file=file)


def parse_dotenv(text: str, *, file: str) -> dict[str, str]:
    """The variables of a `.env` text; a later line wins over an earlier one of the same name."""
    values: dict[str, str] = {}
    errors: list[ConfigError] = []
    # Lines end at \n, \r\n or \r only, as editors count them: `str.splitlines` would also
    # break at U+2028, U+0085 and form feeds, cutting a value that holds one.
    for number, line in enumerate(_LINE_END.split(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            name, value = _parse_line(stripped)
        except ValueError as exc:
            errors.append(ConfigError(str(exc), file=file, line=number))
            continue
        values[name] = value
    if errors:
        first = errors[0]
        first.errors = errors
        raise first
    return values


def _parse_line(line: str) -> tuple[str, str]:
    assignment = _ASSIGNMENT.match(line)
    if assignment is None:
        raise ValueError(
            "expected NAME=VALUE (a name of letters, digits and _, not starting with a "
            "digit), a # comment or a blank line"
        )
    name, rest = assignment.group(1), line[assignment.end() :]
    if rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise ValueError(f"{name}: the closing ' is missing (a value is one line)")
        return name, _after_quote(name, rest[1:end], rest[end + 1 :])
    if rest.startswith('"'):
        value, end = _double_quoted(name, rest)
        return name, _after_quote(name, value, rest[end + 1 :])
    # Unquoted: a comment starts at ` #`; a `#` inside a word belongs to the value.
    comment = re.search(r"\s#", rest)
    if comment is not None:
        rest = rest[: comment.start()]
    return name, rest.rstrip()


def _double_quoted(name: str, rest: str) -> tuple[str, int]:
    out: list[str] = []
    i = 1
    while i < len(rest):
        char = rest[i]
        if char == '"':
            return "".join(out), i
        if char == "\\" and i + 1 < len(rest):
            following = rest[i + 1]
            out.append(_ESCAPES.get(following, "\\" + following))
            i += 2
            continue
        out.append(char)
        i += 1
    raise ValueError(f'{name}: the closing " is missing (a value is one line; write \\n)')


def _after_quote(name: str, value: str, tail: str) -> str:
    tail = tail.strip()
    if tail and not tail.startswith("#"):
        raise ValueError(f"{name}: text after the closing quote (start a comment with #)")
    return value
