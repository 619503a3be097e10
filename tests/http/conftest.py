from __future__ import annotations

import pytest


class FakeTime:
    """A monotonic clock, a wall clock and a sleep that advances both, for exact timing tests."""

    def __init__(self, start_wall: float = 1_800_000_000.0) -> None:
        self.now = 1000.0
        self.wall_offset = start_wall - self.now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.wall_offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
