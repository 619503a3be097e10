"""A run stopped by a BaseException that is not an Exception (SystemExit; Prefect's
termination signal on SIGTERM) is recorded `cancelled` with its cause, not `failed`
(sync/_run_record.py)."""

from __future__ import annotations

import pytest

from interlink.store import Store
from interlink.sync._run_record import RunResult, recorded_run


class TerminationSignal(BaseException):
    """Stands in for a framework's own stop signal (Prefect's is a BaseException)."""


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (SystemExit(3), "stopped by SystemExit: 3"),
        (TerminationSignal("SIGTERM"), "stopped by TerminationSignal: SIGTERM"),
        (RuntimeError("boom"), "RuntimeError: boom"),
    ],
)
async def test_how_a_run_stopped_from_outside_is_recorded(tmp_path, raised, message):
    store = Store.open(f"sqlite:///{tmp_path / 'runs.db'}")
    result = RunResult("customers")
    with pytest.raises(type(raised)):
        async with recorded_run(store, result, lease=30):
            raise raised
    [row] = store.runs("customers")
    expected = "failed" if isinstance(raised, Exception) else "cancelled"
    assert (row["status"], row["message"]) == (expected, message)
    # The lock was let go: the next run starts.
    async with recorded_run(store, RunResult("customers"), lease=30):
        pass
    store.close()
