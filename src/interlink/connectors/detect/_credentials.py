"""The auth flags of `init --from` and `inspect`: real values to probe with, `${VAR}`
references to write.

A flag's value is either the secret itself or a `${VAR}` reference. Probing uses the real
value; the written file only ever holds a reference, to the variable given, or to one named
after the connection (`GITHUB_TOKEN`) that the user is told to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._model import DetectionError

__all__ = ["Credentials", "Secrets"]

_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|session|signature", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the user passed: `--bearer`, `--header` (repeatable), `--api-key-param`, `--basic`."""

    bearer: str | None = None
    headers: tuple[str, ...] = ()
    api_key_param: str | None = None
    basic: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.bearer or self.headers or self.api_key_param or self.basic)


@dataclass(slots=True)
class Secrets:
    """The connection's auth and headers twice: resolved for probing, as references to write."""

    auth: dict[str, Any] = field(default_factory=lambda: {"type": "none"})
    headers: dict[str, str] = field(default_factory=dict)
    written_auth: dict[str, Any] = field(default_factory=lambda: {"type": "none"})
    written_headers: dict[str, str] = field(default_factory=dict)
    variables: dict[str, bool] = field(default_factory=dict)
    """Every variable the written file needs -> whether it is already set."""
    secrets: list[str] = field(default_factory=list)
    """The real secret values (to make sure none is ever printed)."""

    @classmethod
    def of(cls, credentials: Credentials, prefix: str, env: Mapping[str, str]) -> Secrets:
        made = cls()
        made._build(credentials, prefix.upper().replace("-", "_"), env)
        return made

    def _value(
        self, given: str, variable: str, env: Mapping[str, str], flag: str
    ) -> tuple[str, str]:
        """(the real value, what to write) of one flag value."""
        match = _REFERENCE.match(given.strip())
        if match is None:
            self.variables[variable] = variable in env
            self.secrets.append(given)
            return given, f"${{{variable}}}"
        name = match.group(1)
        if name not in env:
            raise DetectionError(f"{flag}: the variable {name} is not set")
        self.variables[name] = True
        self.secrets.append(env[name])
        return env[name], f"${{{name}}}"

    def _build(self, credentials: Credentials, prefix: str, env: Mapping[str, str]) -> None:
        if credentials.bearer is not None:
            real, written = self._value(credentials.bearer, f"{prefix}_TOKEN", env, "--bearer")
            self.auth = {"type": "bearer", "token": real}
            self.written_auth = {"type": "bearer", "token": written}
        elif credentials.basic is not None:
            user, sep, password = credentials.basic.partition(":")
            if not sep or not user:
                raise DetectionError("--basic: expected user:password")
            real, written = self._value(password, f"{prefix}_PASSWORD", env, "--basic")
            self.auth = {"type": "basic", "username": user, "password": real}
            self.written_auth = {"type": "basic", "username": user, "password": written}
        elif credentials.api_key_param is not None:
            name, sep, key = credentials.api_key_param.partition("=")
            if not sep or not name.strip():
                raise DetectionError("--api-key-param: expected name=value, such as api_key=...")
            real, written = self._value(key, f"{prefix}_API_KEY", env, "--api-key-param")
            self.auth = {"type": "api_key", "in": "query", "name": name.strip(), "key": real}
            self.written_auth = {**self.auth, "key": written}
        for header in credentials.headers:
            name, sep, value = header.partition(":")
            name, value = name.strip(), value.strip()
            if not sep or not name or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
                raise DetectionError(
                    "--header: expected 'Name: value' with a header name before the colon"
                )
            if _SECRET_HEADER.search(name) or _REFERENCE.match(value):
                variable = f"{prefix}_{re.sub(r'[^A-Z0-9]+', '_', name.upper()).strip('_')}"
                real, written = self._value(value, variable, env, f"--header {name}")
            else:
                real = written = value
            self.headers[name] = real
            self.written_headers[name] = written
