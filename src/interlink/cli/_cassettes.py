"""`--record NAME` and `--replay NAME`: a command's HTTP exchanges stored in a cassette, or
answered from one (interlink.http's cassettes), for `run` and the commands like it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlink.http import Cassette

__all__ = ["cassette_session", "check_cassette_options"]


def check_cassette_options(record: str | None, replay: str | None) -> None:
    """Refuse --record with --replay (before anything else is read)."""
    from interlink.errors import ConfigError

    if record and replay:
        raise ConfigError("--record and --replay: give one of them, not both")


@contextmanager
def cassette_session(record: str | None, replay: str | None) -> Iterator[Cassette | None]:
    """Record into or replay from a cassette while the command runs (see interlink.http);
    giving both is a usage error."""
    from interlink.http import recording, replaying

    check_cassette_options(record, replay)
    if record:
        with recording(record) as cassette:
            yield cassette
    elif replay:
        with replaying(replay) as cassette:
            yield cassette
    else:
        yield None
