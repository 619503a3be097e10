"""interlink's log records, while a task runs, in that task run's log in Prefect.

```python
with forward_logs(project.redactor, level="INFO"):
    ...  # interlink's records from this task (its threads too) reach Prefect's API
```

A handler is attached to the `interlink` logger for the task's duration and removed
after. It takes only the records made on behalf of this task (a context variable marks
them, so two tasks running side by side in threads keep their own logs) and sends them
to Prefect's API log handler, tagged with the task run, as `get_run_logger()` would. The
console is left to the process's own logging: the logger's level is lowered to see the
records asked for, but only those the process's levels let through before go up to its
handlers (Prefect's console among them), so `log_level="DEBUG"` does not print a line per
request. Messages are masked again with every secret the config holds, over interlink's
own masking.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging import get_run_logger
from prefect.logging.handlers import APILogHandler

from interlink.http import Redactor

__all__ = ["INTERLINK_LOGGER", "forward_logs", "run_logger"]

INTERLINK_LOGGER = "interlink"

_current: ContextVar[object | None] = ContextVar("interlink_prefect_task", default=None)
_levels_lock = threading.Lock()


class _ToPrefect(logging.Handler):
    """Sends this task's interlink records to Prefect's API, masked."""

    def __init__(self, mark: object, redactor: Redactor, level: int, ids: dict[str, object]):
        super().__init__(level)
        self._mark = mark
        self._redactor = redactor
        self._ids = ids
        self._api = APILogHandler()

    def filter(self, record: logging.LogRecord) -> bool:
        return _current.get() is self._mark and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                message = f"{message}: {type(error).__name__}: {error}"
            masked = logging.LogRecord(
                record.name,
                record.levelno,
                record.pathname,
                record.lineno,
                self._redactor.text(message),
                None,
                None,
                record.funcName,
            )
            masked.created = record.created
            masked.__dict__.update(self._ids)
            self._api.handle(masked)
        except Exception:  # a log line must never fail the run
            self.handleError(record)


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's logger of the current task or flow run; outside one (a task's `.fn`, a
    script), the `interlink.prefect` logger, so that a task run that way still returns."""
    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return logging.getLogger(f"{INTERLINK_LOGGER}.prefect")
    return get_run_logger()


@contextmanager
def forward_logs(redactor: Redactor, *, level: int | str = logging.INFO) -> Iterator[None]:
    """Forward interlink's records at `level` and above to the current Prefect task run
    (nothing outside a task run) for the duration of the block."""
    context = TaskRunContext.get()
    if context is None or context.task_run is None:
        yield
        return
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"log_level: expected a logging level such as INFO, got {level!r}")
    ids: dict[str, object] = {
        "task_run_id": context.task_run.id,
        "flow_run_id": context.task_run.flow_run_id,
    }
    mark = object()
    handler = _ToPrefect(mark, redactor, numeric, ids)
    logger = logging.getLogger(INTERLINK_LOGGER)
    token = _current.set(mark)
    _lower(logger, numeric)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        _restore(logger, numeric)
        _current.reset(token)


class _Console(logging.Handler):
    """The interlink logger's propagation while forwarders are attached.

    A forwarder lowers the logger's level to see the records it wants (DEBUG: one per HTTP
    request), which would also send them up to the root logger's handlers (Prefect's
    console handler has level 0). So the logger stops propagating meanwhile, and this
    handler passes up only the records the process's own levels let through before.
    """

    def __init__(self, logger: logging.Logger, level: int, propagate: bool) -> None:
        super().__init__(logging.NOTSET)
        self._logger = logger
        self._level = level
        self._propagate = propagate

    def emit(self, record: logging.LogRecord) -> None:
        parent = self._logger.parent
        if not self._propagate or parent is None:
            return
        if record.levelno >= self._threshold(record.name):
            parent.callHandlers(record)

    def _threshold(self, name: str) -> int:
        """The level the record's logger had before interlink's was lowered."""
        current: logging.Logger | None = logging.getLogger(name)
        while current is not None and current is not self._logger:
            if current.level:
                return current.level
            current = current.parent
        if self._level:
            return self._level
        return self._logger.parent.getEffectiveLevel() if self._logger.parent else 0


class _Lowered:
    """The interlink logger as the process set it, while any forwarder is attached."""

    def __init__(self, logger: logging.Logger) -> None:
        self.level = logger.level
        self.effective = logger.getEffectiveLevel()
        self.propagate = logger.propagate
        self.console = _Console(logger, self.level, self.propagate)


_wanted: list[int] = []
"""The levels asked for by the forwarders attached now."""
_saved: list[_Lowered] = []
"""The logger as the process set it, while `_wanted` is not empty."""


def _lower(logger: logging.Logger, level: int) -> None:
    """Let records at `level` through the interlink logger while a forwarder wants them,
    and no more of them up to the process's handlers than before."""
    with _levels_lock:
        if not _wanted:
            saved = _Lowered(logger)
            _saved.append(saved)
            logger.addHandler(saved.console)
            logger.propagate = False
        _wanted.append(level)
        logger.setLevel(min(min(_wanted), _saved[0].effective))


def _restore(logger: logging.Logger, level: int) -> None:
    with _levels_lock:
        _wanted.remove(level)
        if _wanted:
            logger.setLevel(min(min(_wanted), _saved[0].effective))
            return
        saved = _saved.pop()
        logger.removeHandler(saved.console)
        logger.propagate = saved.propagate
        logger.setLevel(saved.level)
