"""AsyncJobsClient used as asyncio code uses it: `async with`, `await`, `async for`."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from interlink.client import AsyncJobsClient
from interlink.errors import ServerError
from interlink.http import RetryPolicy

from .fake_api import API_KEY, BASE, FakeApi, FakeTime, err, no_jitter


def _client(api: FakeApi, fake_time: FakeTime, **kwargs) -> AsyncJobsClient:
    return AsyncJobsClient(
        BASE,
        API_KEY,
        transport=httpx.MockTransport(api),
        retry_policy=RetryPolicy(jitter=no_jitter),
        sleep=fake_time.async_sleep,
        clock=fake_time.clock,
        **kwargs,
    )


async def test_submit_wait_and_iterate(api, fake_time):
    api.statuses[1] = ["queued", "running", "completed"]
    async with _client(api, fake_time) as client:
        job = await client.submit_job("customers", dry_run=True)
        done = await client.wait_for_job(job["job_id"])
        assert done["status"] == "completed"
        api.add_jobs(4)
        ids = [j["id"] async for j in client.iter_jobs(page_size=2)]
    assert ids == [5, 4, 3, 2, 1]
    assert fake_time.sleeps == [0.5, 1.0]


async def test_concurrent_calls_share_one_client(api, fake_time):
    api.add_jobs(5)
    async with _client(api, fake_time) as client:
        jobs = await asyncio.gather(*(client.get_job(i) for i in range(1, 6)))
    assert [j["id"] for j in jobs] == [1, 2, 3, 4, 5]


async def test_retries_sleep_through_the_injected_coroutine(api, fake_time):
    api.script = [err(500, "INTERNAL_ERROR")] * 2
    async with _client(api, fake_time, max_retries=1) as client:
        with pytest.raises(ServerError) as caught:
            await client.health()
    assert caught.value.attempts == 2 and fake_time.sleeps == [0.5]


async def test_aclose_closes_the_http_client(api, fake_time):
    client = _client(api, fake_time)
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.health()
