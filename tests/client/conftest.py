"""Both clients built on the fake API: the `make_client` fixture runs each test against
`JobsClient` and against `AsyncJobsClient` behind a blocking facade."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import httpx
import pytest

from interlink.client import AsyncJobsClient, JobsClient
from interlink.http import RetryPolicy

from .fake_api import API_KEY, BASE, FakeApi, FakeTime, no_jitter


class Blocking:
    """An AsyncJobsClient driven from a plain test: every coroutine runs to completion on a
    private event loop, and async iterators are collected into lists."""

    def __init__(self, client: AsyncJobsClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if inspect.isasyncgenfunction(attr):
            return lambda *a, **k: self._loop.run_until_complete(_collect(attr(*a, **k)))
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: self._loop.run_until_complete(attr(*a, **k))
        return attr

    def __repr__(self) -> str:
        return repr(self._client)

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._client.aclose())
        finally:
            self._loop.close()


async def _collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(params=["sync", "async"])
def make_client(request, api, fake_time):
    """Build the client under test (sync or async) on the fake API and fake time."""
    made: list[Any] = []

    def factory(**overrides: Any) -> Any:
        options: dict[str, Any] = {
            "retry_policy": RetryPolicy(jitter=no_jitter),
            "clock": fake_time.clock,
            "wall": fake_time.wall,
            **overrides,
        }
        api_key = options.pop("api_key", API_KEY)
        base = options.pop("base_url", BASE)
        transport = httpx.MockTransport(options.pop("handler", api))
        if request.param == "sync":
            client: Any = JobsClient(
                base, api_key, transport=transport, sleep=fake_time.sleep, **options
            )
        else:
            client = Blocking(
                AsyncJobsClient(
                    base, api_key, transport=transport, sleep=fake_time.async_sleep, **options
                )
            )
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def client(make_client):
    return make_client()
