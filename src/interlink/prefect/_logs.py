"""interlink's log records, while a task runs, in that task run's log in Prefect.

```python
with forward_logs(project.redactor, level="INFO"):
    ...  # interlink's records from this task (its threads too) reach Prefect's API
```

A handler is attached to the `interlink` logger for the task's duration and removed
after. It takes only the records made on behalf of this task (a context variable marks
them, so two tasks running side by side in threads keep their own logs) and sends them
to Prefect's API log handler, tagged with the task run, as `get_run_logger()` would. The
console is left to the process's own logging: a record is not printed twice. Messages
are masked again with every secret the config holds, over interlink's own masking.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from prefect.context import TaskRunContext
from prefect.logging.handlers import APILogHandler

from interlink.http import Redactor

__all__ = ["INTERLINK_LOGGER", "forward_logs"]

INTERLINK_LOGGER = "interlink"

_current: ContextVar[object | None] = ContextVar("interlink_prefect_task", default=None)
_levels_lock = threading.Lock()
_lowered: list[int] = []
"""The levels asked for by the forwarders now attached (the logger's own level is kept
in `_saved` while any is)."""
_saved: list[int] = []


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


def _lower(logger: logging.Logger, level: int) -> None:
    """Let records at `level` through the interlink logger while a forwarder wants them."""
    with _levels_lock:
        if not _lowered:
            _saved.append(logger.level)
        _lowered.append(level)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)


def _restore(logger: logging.Logger, level: int) -> None:
    with _levels_lock:
        _lowered.remove(level)
        if not _lowered:
            logger.setLevel(_saved.pop())
        else:
            logger.setLevel(min(min(_lowered), _saved[-1] or logging.WARNING))
