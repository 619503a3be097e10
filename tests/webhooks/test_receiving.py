"""`POST /api/v1/webhooks/{source}` on the real app and a real database (SQLite, and
PostgreSQL with Procrastinate): stored with its job before the 2xx, duplicates answered
200 and not queued again, refusals logged without their bodies, nothing stored for them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.jobs import JobFilter, Queue, open_queue
from interlink.server import create_app
from interlink.store import Store, deliveries, list_rejections, rejections
from interlink.webhooks import BATCH_SIZE, PROCESS_KIND, Arrival, Inbox, sign
from tests.jobs.procrastinate_schema import fresh_schema
from tests.webhooks.conftest import STANDARD_SECRET

URL = "/api/v1/webhooks/shop"


def body_of(event: str, n: int = 1) -> bytes:
    return f'{{"id":"evt_{event}","type":"customer.updated","data":{{"id":{n}}}}}'.encode()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hooks.db'}"
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_hooks") as url:
        yield url


class Rig:
    def __init__(self, database: str) -> None:
        self.config = InterlinkConfig.model_validate(
            {
                "database": database,
                # The test client's address: its X-Forwarded-For is believed.
                "server": {"trusted_proxies": ["203.0.113.0/24"]},
                "webhooks": {
                    "shop": {"scheme": "standard", "secret": STANDARD_SECRET, "max_body": 4096},
                    "off": {"scheme": "standard", "secret": STANDARD_SECRET, "enabled": False},
                },
            }
        )
        self.store = Store.open(self.config.database)
        self.queue: Queue = open_queue(self.config, self.store)
        self.app = create_app(self.config, store=self.store, queue=self.queue)
        self.source = self.config.webhooks["shop"]

    def headers(self, body: bytes, *, at: float | None = None, **kw: Any) -> dict[str, str]:
        return sign(self.source, body, timestamp=int(at or time.time()), **kw)

    def stored(self) -> list[sa.RowMapping]:
        with self.store.engine.connect() as conn:
            query = sa.select(deliveries).order_by(deliveries.c.id)
            return list(conn.execute(query).mappings())

    def refused(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(rejections)).scalar())

    def close(self) -> None:
        self.queue.close()
        self.store.close()


@pytest.fixture
async def rig(database: str) -> AsyncIterator[tuple[Rig, httpx.AsyncClient]]:
    rig = Rig(database)
    transport = httpx.ASGITransport(app=rig.app, client=("203.0.113.7", 5000))
    async with (
        rig.app.router.lifespan_context(rig.app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield rig, client
    rig.close()


async def test_a_delivery_is_stored_with_its_job_before_the_answer(rig) -> None:
    rig, client = rig
    body = body_of("1", 7)
    answer = await client.post(URL, content=body, headers=rig.headers(body, delivery_id="m1"))
    assert answer.status_code == 202, answer.text
    data = answer.json()["data"]
    assert data["delivery_id"] == "m1" and data["status"] == "accepted"
    assert data["duplicate"] is False and data["event_type"] == "customer.updated"
    assert answer.json()["meta"]["request_id"] == answer.headers["x-request-id"]
    [row] = rig.stored()
    assert (row["id"], row["source"], row["delivery_id"], row["status"]) == (
        data["id"],
        "shop",
        "m1",
        "pending",
    )
    assert bytes(row["body"]) == body
    # The headers verification read (signatures are not secrets; they can be checked again).
    assert set(row["headers"]) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    job = rig.queue.get(row["job_id"])
    assert job is not None and job.kind == PROCESS_KIND and job.status == "queued"
    assert job.args == {"deliveries": [row["id"]], "source": "shop"}


async def test_a_repeated_delivery_answers_200_and_queues_nothing_more(rig) -> None:
    rig, client = rig
    body = body_of("2")
    headers = rig.headers(body, delivery_id="m2")
    first = await client.post(URL, content=body, headers=headers)
    again = await client.post(URL, content=body, headers=rig.headers(body, delivery_id="m2"))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["data"]["duplicate"] is True
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert len(rig.stored()) == 1
    assert len(rig.queue.list(JobFilter(kind=PROCESS_KIND))) == 1


async def test_concurrent_deliveries_share_commits_and_none_is_lost(rig) -> None:
    rig, client = rig
    bodies = [body_of(f"c{n}", n) for n in range(200)]
    # 20 of them twice, at the same time: each stored once, one job each.
    sends = [(b, f"c{n}") for n, b in enumerate(bodies)] + [
        (bodies[n], f"c{n}") for n in range(0, 200, 10)
    ]
    answers = await asyncio.gather(
        *(client.post(URL, content=b, headers=rig.headers(b, delivery_id=i)) for b, i in sends)
    )
    codes = [a.status_code for a in answers]
    assert codes.count(202) == 200 and codes.count(200) == 20, codes
    rows = rig.stored()
    assert sorted(r["delivery_id"] for r in rows) == sorted(f"c{n}" for n in range(200))
    # Each commit's new deliveries share jobs of at most BATCH_SIZE; each delivery is in
    # exactly one job, the one it names.
    jobs = rig.queue.list(JobFilter(kind=PROCESS_KIND, limit=1000))
    named = {r["id"]: r["job_id"] for r in rows}
    covered = [(d, job.id) for job in jobs for d in job.args["deliveries"]]
    assert sorted(d for d, _ in covered) == sorted(named)
    assert all(named[d] == job_id for d, job_id in covered)
    assert all(len(job.args["deliveries"]) <= BATCH_SIZE for job in jobs)
    inbox = rig.app.state.interlink.inbox()
    assert inbox.batches < 200, "every delivery had a commit of its own: no grouping"


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ("signature", 401, "signature_mismatch"),
        ("stale", 401, "timestamp_out_of_tolerance"),
        ("missing", 401, "missing_signature"),
        ("malformed", 400, "malformed_header"),
    ],
)
async def test_a_refused_delivery_stores_nothing_and_is_logged(rig, change, status, reason):
    rig, client = rig
    body = body_of("bad")
    headers = rig.headers(body, delivery_id="bad1")
    if change == "signature":
        headers["webhook-signature"] = "v1," + "A" * 43 + "="
    elif change == "stale":
        headers = rig.headers(body, delivery_id="bad1", at=time.time() - 3600)
    elif change == "missing":
        del headers["webhook-signature"]
    else:
        headers["webhook-timestamp"] = "yesterday"
    answer = await client.post(URL, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == ("INVALID_SIGNATURE" if status == 401 else "INVALID_REQUEST")
    assert rig.stored() == []
    assert rig.queue.counts()["queued"] == 0
    rig.app.state.interlink.close_inbox()  # writes the refusals still waiting
    [logged] = list_rejections(rig.store.engine, "shop")
    assert (logged.reason, logged.status, logged.address) == (reason, status, "203.0.113.7")
    assert "evt_bad" not in logged.message and STANDARD_SECRET not in logged.message


async def test_unknown_and_disabled_sources_are_404(rig) -> None:
    rig, client = rig
    body = body_of("x")
    for path in ("/api/v1/webhooks/nowhere", "/api/v1/webhooks/off"):
        answer = await client.post(path, content=body, headers=rig.headers(body))
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "NOT_FOUND"
    assert rig.stored() == [] and rig.refused() == 0


async def test_other_methods_are_405_with_allow(rig) -> None:
    rig, client = rig
    answer = await client.get(URL)
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"


async def test_bodies_over_max_body_are_413_before_they_are_read(rig) -> None:
    rig, client = rig
    big = b'{"id":"evt_big","pad":"' + b"x" * 5000 + b'"}'
    answer = await client.post(URL, content=big, headers=rig.headers(big))
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    streamed = await client.post(URL, content=chunks(), headers=rig.headers(big))
    assert streamed.status_code == 413
    assert rig.stored() == []


async def test_no_api_key_is_needed_but_the_api_routes_still_want_one(rig) -> None:
    rig, client = rig
    body = body_of("k")
    assert (await client.post(URL, content=body, headers=rig.headers(body))).status_code == 202
    listed = await client.get("/api/v1/webhooks/deliveries")
    assert listed.status_code == 401


def test_close_stores_what_waits_and_returns_promptly(database: str) -> None:
    rig = Rig(database)
    inbox = Inbox(rig.store, rig.queue, writers=3)

    async def many() -> list[Any]:
        arrivals = [
            Arrival("shop", f"w{n}", "t", time.time(), body_of(f"w{n}"), {}) for n in range(50)
        ]
        waiting = [asyncio.ensure_future(inbox.accept(a)) for a in arrivals]
        await asyncio.sleep(0)  # every request is queued before the close
        await asyncio.to_thread(inbox.close)
        return await asyncio.gather(*waiting)

    started = time.monotonic()
    stored = asyncio.run(many())
    assert time.monotonic() - started < 3, "close waited on idle writers"
    assert len({s.id for s in stored}) == 50 and len(rig.stored()) == 50
    rig.close()


async def test_a_database_failure_answers_503_and_the_inbox_recovers(rig) -> None:
    rig, client = rig
    with rig.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE interlink_webhook_deliveries RENAME TO hidden"))
    body = body_of("f1")
    failed = await client.post(URL, content=body, headers=rig.headers(body, delivery_id="f1"))
    assert failed.status_code == 503, failed.text
    assert failed.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    with rig.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE hidden RENAME TO interlink_webhook_deliveries"))
    again = await client.post(URL, content=body, headers=rig.headers(body, delivery_id="f1"))
    assert again.status_code == 202, again.text
    assert [r["delivery_id"] for r in rig.stored()] == ["f1"]
    assert rig.queue.counts()["queued"] == 1


async def test_an_unstorable_refusal_never_costs_a_delivery_its_answer(rig) -> None:
    """A refusal whose sender address is longer than the log's column (an IPv6 scope id
    passed on by a trusted proxy) is cut to fit, and written apart from deliveries."""
    rig, client = rig
    long_address = "fe80::1%" + "z" * 150
    bodies = [body_of(f"p{n}", n) for n in range(20)]

    async def valid(n: int) -> int:
        headers = rig.headers(bodies[n], delivery_id=f"p{n}")
        return (await client.post(URL, content=bodies[n], headers=headers)).status_code

    async def refused() -> int:
        headers = {**rig.headers(bodies[0]), "webhook-signature": "v1," + "A" * 43 + "="}
        headers["x-forwarded-for"] = long_address
        return (await client.post(URL, content=bodies[0], headers=headers)).status_code

    codes = await asyncio.gather(*(valid(n) for n in range(20)), *(refused() for _ in range(20)))
    assert codes[:20] == [202] * 20 and codes[20:] == [401] * 20
    rig.app.state.interlink.close_inbox()
    logged = list_rejections(rig.store.engine, "shop")
    assert len(logged) == 20
    assert {r.address for r in logged} == {long_address[:100]}


async def call(app: Any, body: bytes, headers: dict[str, str], **scope: Any) -> list[Any]:
    """One request straight into the ASGI app; the messages it sent back."""
    sent: list[dict[str, Any]] = []
    request = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "headers": [
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("203.0.113.9", 1),
        "server": ("127.0.0.1", 443),
        "scheme": "https",
        "root_path": "",
        **scope,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(request, receive, send)
    return sent


async def test_http_2_deliveries_are_received_too(rig) -> None:
    rig, _ = rig
    body = body_of("h2")
    sent = await call(rig.app, body, rig.headers(body), http_version="2")
    assert sent[0]["status"] == 202


async def test_a_413_closes_the_connection(rig) -> None:
    rig, _ = rig
    big = b"x" * 5000
    sent = await call(rig.app, big, rig.headers(big))
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]


async def test_a_storage_failure_keeps_bodies_and_headers_out_of_the_log(rig, caplog) -> None:
    rig, client = rig
    with rig.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE interlink_webhook_deliveries RENAME TO hidden"))
    body = body_of("secret-looking-body")
    headers = rig.headers(body, delivery_id="s1")
    with caplog.at_level("DEBUG"):
        answer = await client.post(URL, content=body, headers=headers)
    assert answer.status_code == 503
    logged = caplog.text
    assert "interlink_webhook_deliveries" in logged or "no such table" in logged.lower()
    assert "secret-looking-body" not in logged
    assert headers["webhook-signature"] not in logged
    with rig.store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE hidden RENAME TO interlink_webhook_deliveries"))


def test_the_writer_survives_a_connection_that_cannot_be_made(database: str) -> None:
    rig = Rig(database)
    inbox = Inbox(rig.store, rig.queue)
    real = inbox._connect
    fired: list[int] = []

    def once() -> Any:
        if not fired:
            fired.append(1)
            raise OSError("the database went away")
        return real()

    inbox._connect = once  # type: ignore[method-assign]
    # Its first connection is made lazily, on the first batch: that one fails.

    async def two() -> tuple[Any, Any]:
        arrival = Arrival("shop", "c1", "t", time.time(), body_of("c1"), {})
        try:
            await inbox.accept(arrival, timeout=10)
        except OSError as exc:
            first: Any = exc
        else:  # pragma: no cover
            first = None
        return first, await inbox.accept(arrival, timeout=10)

    first, second = asyncio.run(two())
    assert fired == [1] and isinstance(first, OSError)
    assert second.duplicate is False and len(rig.stored()) == 1
    inbox.close()
    rig.close()
