"""`/api/v1/webhooks/deliveries` and `/webhooks/rejections` on the real app and a real
database (SQLite, and PostgreSQL with Procrastinate): listings and pages, one delivery with
its headers and body, replays that queue a `webhook.process` job in the same transaction,
scopes, and a replay racing a dispatcher that starts the delivery."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from interlink.config import InterlinkConfig
from interlink.errors import WebhookError
from interlink.jobs import JobFilter, open_queue
from interlink.server import create_app
from interlink.store import (
    Store,
    create_api_key,
    deliveries,
    get_delivery,
    jobs,
    rejections,
    start_delivery,
)
from interlink.webhooks import PROCESS_KIND, replay, replay_failed
from tests.jobs.procrastinate_schema import fresh_schema
from tests.server.conftest import Api, assert_error
from tests.webhooks.conftest import STANDARD_SECRET

NOW = 1_796_000_000.0
JSON_BODY = b'{"id":"evt_1","type":"customer.updated","data":{"id":7,"name":"Zo\xc3\xab"}}'
BINARY_BODY = b"\x89PNG\r\n\x1a\n\x00\xff\xfe"
HEADERS = {
    "webhook-id": "evt_1",
    "webhook-timestamp": str(int(NOW)),
    "webhook-signature": "v1,c2lnbmF0dXJlLXZhbHVl",
    "x-api-key": "a-key-someone-stored",
    "content-type": "application/json",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'inbox.db'}"
        return
    with fresh_schema(request.getfixturevalue("postgres_url"), "test_inbox") as url:
        yield url


def make_config(database: str) -> InterlinkConfig:
    return InterlinkConfig.model_validate(
        {
            "database": database,
            "webhooks": {
                "shop": {"scheme": "standard", "secret": STANDARD_SECRET, "max_attempts": 7},
                "billing": {"scheme": "standard", "secret": STANDARD_SECRET},
            },
        }
    )


@pytest.fixture
async def api(database: str) -> AsyncIterator[Api]:
    config = make_config(database)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    app = create_app(config, store=store, queue=queue)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://interlink.test")
    made = Api(app, config, store, queue, client)
    for scope in ("read", "write", "admin"):
        made.keys[scope] = create_api_key(store.engine, f"{scope} key", scope).secret
    yield made
    await client.aclose()
    queue.close()
    store.close()


def add_delivery(
    store: Store,
    *,
    source: str = "shop",
    status: str = "failed",
    event_type: str | None = "customer.updated",
    body: bytes = JSON_BODY,
    headers: dict[str, str] | None = None,
    attempts: int = 0,
    last_error: str | None = None,
    job_id: int | None = None,
    delivery_id: str | None = None,
) -> int:
    """A delivery row as the inbox would have stored it (the inbox is not under test). A
    `processing` one gets a running job: its attempt is under way."""
    with store.transaction() as conn:
        if status == "processing":
            job_id = running_job(conn, job_id)
        count = conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one()
        inserted = conn.execute(
            sa.insert(deliveries).values(
                source=source,
                delivery_id=delivery_id or f"evt_{count + 1}",
                event_type=event_type,
                status=status,
                received_at=NOW + count,
                attempts=attempts,
                last_error=last_error,
                body=body,
                headers=headers if headers is not None else HEADERS,
                job_id=job_id,
                processed_at=NOW + count + 1 if status in ("processed", "failed") else None,
            )
        ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def running_job(conn: sa.Connection, job_id: int | None) -> int:
    """A `webhook.process` job row that is running (id `job_id` when given)."""
    values: dict[str, Any] = {
        "kind": "webhook.process",
        "args": {},
        "status": "running",
        "priority": 0,
        "attempts": 1,
        "max_attempts": 5,
        "run_at": NOW,
        "created_at": NOW,
        "cancel_requested": False,
    }
    if job_id is not None:
        values["id"] = job_id
    inserted = conn.execute(sa.insert(jobs).values(**values)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def row(store: Store, delivery: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery)).first()
    assert found is not None
    return dict(found._mapping)


def job_count(api: Api) -> int:
    return len(api.queue.list(JobFilter(limit=1000)))


# -- listing -------------------------------------------------------------------------------


async def test_list_filters_and_pages_newest_first(api: Api) -> None:
    ids = [
        add_delivery(api.store, source="shop", status="processed"),
        add_delivery(api.store, source="billing", status="failed", event_type="invoice.paid"),
        add_delivery(api.store, source="shop", status="failed", last_error="HTTP 500"),
        add_delivery(api.store, source="shop", status="pending", event_type=None),
        add_delivery(api.store, source="billing", status="ignored", event_type="invoice.paid"),
    ]

    first = await api.get("/webhooks/deliveries", scope="read", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [d["id"] for d in page["data"]] == ids[::-1][:2]
    assert page["meta"]["limit"] == 2 and page["meta"]["next_before"] == ids[3]
    assert "body" not in page["data"][0] and "headers" not in page["data"][0]
    rest = (await api.get("/webhooks/deliveries", params={"limit": 2, "before": ids[3]})).json()
    assert [d["id"] for d in rest["data"]] == [ids[2], ids[1]]
    last = (await api.get("/webhooks/deliveries", params={"limit": 2, "before": ids[1]})).json()
    assert [d["id"] for d in last["data"]] == [ids[0]] and last["meta"]["next_before"] is None

    shop_failed = (
        await api.get("/webhooks/deliveries", params={"source": "shop", "status": "failed"})
    ).json()["data"]
    assert [(d["id"], d["last_error"]) for d in shop_failed] == [(ids[2], "HTTP 500")]
    paid = (await api.get("/webhooks/deliveries", params={"event_type": "invoice.paid"})).json()
    assert [d["id"] for d in paid["data"]] == [ids[4], ids[1]]
    shown = paid["data"][0]
    assert shown["source"] == "billing" and shown["status"] == "ignored"
    assert shown["received_at"] == NOW + 4 and shown["delivery_id"] == "evt_5"
    clamped = (await api.get("/webhooks/deliveries", params={"limit": 100_000})).json()
    assert clamped["meta"]["limit"] == 100 and len(clamped["data"]) == 5

    typo = await api.get("/webhooks/deliveries", params={"sorce": "shop"})
    assert assert_error(typo, 422, "VALIDATION_ERROR")["details"][0]["field"] == "sorce"
    bad_status = await api.get("/webhooks/deliveries", params={"status": "done"})
    assert assert_error(bad_status, 422, "VALIDATION_ERROR")["details"][0]["field"] == "status"
    bad_source = await api.get("/webhooks/deliveries", params={"source": "../x"})
    assert_error(bad_source, 422, "VALIDATION_ERROR")
    assert_error(await api.client.get("/api/v1/webhooks/deliveries"), 401, "UNAUTHORIZED")


# -- one delivery --------------------------------------------------------------------------


async def test_show_gives_headers_and_the_body_as_text_or_base64(api: Api) -> None:
    text = add_delivery(api.store, attempts=3, last_error="HTTP 502 from shop")
    binary = add_delivery(api.store, body=BINARY_BODY, event_type=None, status="pending")

    answer = await api.get(f"/webhooks/deliveries/{text}", scope="read")
    assert answer.status_code == 200, answer.text
    shown = answer.json()["data"]
    assert shown["body"] == JSON_BODY.decode() and shown["body_base64"] is None
    assert shown["attempts"] == 3 and shown["last_error"] == "HTTP 502 from shop"
    assert shown["headers"]["webhook-id"] == "evt_1"
    assert shown["headers"]["content-type"] == "application/json"
    # A signature and anything named like a key are masked, whatever was stored.
    assert shown["headers"]["webhook-signature"] == "***"
    assert shown["headers"]["x-api-key"] == "***"
    assert "a-key-someone-stored" not in answer.text
    assert "c2lnbmF0dXJlLXZhbHVl" not in answer.text
    assert STANDARD_SECRET not in answer.text

    raw = (await api.get(f"/webhooks/deliveries/{binary}")).json()["data"]
    assert raw["body"] is None and base64.b64decode(raw["body_base64"]) == BINARY_BODY
    assert raw["event_type"] is None and raw["status"] == "pending"

    missing = assert_error(await api.get("/webhooks/deliveries/4242"), 404, "NOT_FOUND")
    assert "4242" in missing["message"]
    assert_error(await api.get("/webhooks/deliveries/0"), 422, "VALIDATION_ERROR")
    assert_error(await api.get("/webhooks/deliveries/abc"), 404, "NOT_FOUND")
    huge = await api.get(f"/webhooks/deliveries/{2**63}")
    assert_error(huge, 422, "VALIDATION_ERROR")
    # The bulk replay's path is not a delivery's: GET there is a 405 naming POST alone.
    wrong = await api.get("/webhooks/deliveries/replay")
    assert_error(wrong, 405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["allow"] == "POST"


# -- replay --------------------------------------------------------------------------------


async def test_replay_queues_a_process_job_and_sets_the_delivery_pending(api: Api) -> None:
    delivery = add_delivery(api.store, attempts=7, last_error="HTTP 500 from shop", job_id=99)
    before = job_count(api)

    answer = await api.post(f"/webhooks/deliveries/{delivery}/replay", scope="write")
    assert answer.status_code == 202, answer.text
    data = answer.json()["data"]
    job_id = data["job_id"]
    assert job_id != 99 and data["delivery"]["job_id"] == job_id
    assert data["delivery"]["status"] == "pending" and data["delivery"]["id"] == delivery
    assert data["status_url"] == f"/api/v1/jobs/{job_id}"
    assert answer.headers["location"] == data["status_url"]

    job = api.queue.get(job_id)
    assert job is not None and job.status == "queued" and job.kind == PROCESS_KIND
    assert job.args == {"delivery": delivery, "source": "shop"}
    assert job.max_attempts == 7  # the source's own max_attempts
    assert job_count(api) == before + 1
    stored = row(api.store, delivery)
    assert stored["status"] == "pending" and stored["job_id"] == job_id
    assert stored["processed_at"] is None
    # What went wrong before is kept.
    assert stored["attempts"] == 7 and stored["last_error"] == "HTTP 500 from shop"
    followed = await api.client.get(data["status_url"], headers=api.auth("read"))
    assert followed.json()["data"]["kind"] == PROCESS_KIND

    # A source without max_attempts gets the queue's.
    other = add_delivery(api.store, source="billing", status="processed")
    again = (await api.post(f"/webhooks/deliveries/{other}/replay")).json()["data"]
    replayed = api.queue.get(again["job_id"])
    assert replayed is not None and replayed.max_attempts == api.config.jobs.max_attempts


async def test_replay_needs_a_write_key(api: Api) -> None:
    delivery = add_delivery(api.store)
    before = (job_count(api), row(api.store, delivery))
    refused = await api.post(f"/webhooks/deliveries/{delivery}/replay", scope="read")
    assert assert_error(refused, 403, "FORBIDDEN")["details"] == [
        {"field": "scope", "issue": "needs write"}
    ]
    bulk = await api.post("/webhooks/deliveries/replay", scope="read", params={"status": "failed"})
    assert_error(bulk, 403, "FORBIDDEN")
    assert (job_count(api), row(api.store, delivery)) == before
    # GET stays readable with the read key, POST is not a method of the listing.
    assert (await api.get(f"/webhooks/deliveries/{delivery}", scope="read")).status_code == 200
    assert_error(await api.post("/webhooks/deliveries"), 405, "METHOD_NOT_ALLOWED")


async def test_replay_of_a_delivery_being_processed_is_a_conflict(api: Api) -> None:
    delivery = add_delivery(api.store, status="processing", attempts=1, job_id=5)
    before = (job_count(api), row(api.store, delivery))
    refused = await api.post(f"/webhooks/deliveries/{delivery}/replay")
    error = assert_error(refused, 409, "CONFLICT")
    assert f"delivery {delivery} is being processed" in error["message"]
    assert (job_count(api), row(api.store, delivery)) == before

    missing = await api.post("/webhooks/deliveries/4242/replay")
    assert "4242" in assert_error(missing, 404, "NOT_FOUND")["message"]
    assert job_count(api) == before[0]


async def test_replay_every_failed_delivery(api: Api) -> None:
    shop = [add_delivery(api.store, source="shop") for _ in range(3)]
    billing = add_delivery(api.store, source="billing")
    done = add_delivery(api.store, source="shop", status="processed")
    busy = add_delivery(api.store, source="shop", status="processing")

    first = await api.post(
        "/webhooks/deliveries/replay", params={"status": "failed", "source": "shop", "limit": 2}
    )
    assert first.status_code == 202, first.text
    assert first.json()["data"] == {"replayed": shop[:2], "count": 2}
    rest = await api.post("/webhooks/deliveries/replay", params={"status": "failed"})
    assert rest.json()["data"] == {"replayed": [shop[2], billing], "count": 2}
    none = await api.post("/webhooks/deliveries/replay", params={"status": "failed"})
    assert none.status_code == 202 and none.json()["data"] == {"replayed": [], "count": 0}

    for delivery in [*shop, billing]:
        stored = row(api.store, delivery)
        job = api.queue.get(stored["job_id"])
        assert stored["status"] == "pending" and job is not None
        assert job.args == {"delivery": delivery, "source": stored["source"]}
    assert row(api.store, done)["status"] == "processed"
    assert row(api.store, busy)["status"] == "processing"
    assert job_count(api) == 4 + 1  # the four replays, and the busy one's running job

    required = await api.post("/webhooks/deliveries/replay")
    assert assert_error(required, 422, "VALIDATION_ERROR")["details"][0]["field"] == "status"
    other = await api.post("/webhooks/deliveries/replay", params={"status": "processed"})
    assert_error(other, 422, "VALIDATION_ERROR")
    too_many = await api.post(
        "/webhooks/deliveries/replay", params={"status": "failed", "limit": 0}
    )
    assert_error(too_many, 422, "VALIDATION_ERROR")


# -- rejections ----------------------------------------------------------------------------


async def test_rejections_newest_first_without_bodies(api: Api) -> None:
    with api.store.transaction() as conn:
        for n, (source, reason, status) in enumerate(
            [
                ("shop", "signature_mismatch", 401),
                ("nosuch", "unknown_source", 404),
                ("shop", "malformed_header", 400),
            ]
        ):
            conn.execute(
                sa.insert(rejections).values(
                    source=source,
                    reason=reason,
                    status=status,
                    message=f"refused: {reason}",
                    address="203.0.113.7",
                    received_at=NOW + n,
                )
            )
    listed = await api.get("/webhooks/rejections", scope="read")
    assert listed.status_code == 200, listed.text
    data = listed.json()["data"]
    assert [r["reason"] for r in data] == [
        "malformed_header",
        "unknown_source",
        "signature_mismatch",
    ]
    assert set(data[0]) == {
        "id",
        "source",
        "reason",
        "status",
        "message",
        "address",
        "received_at",
    }
    shop = (await api.get("/webhooks/rejections", params={"source": "shop", "limit": 1})).json()
    assert [(r["reason"], r["status"]) for r in shop["data"]] == [("malformed_header", 400)]
    assert_error(
        await api.get("/webhooks/rejections", params={"before": 2}), 422, "VALIDATION_ERROR"
    )


async def test_openapi_documents_the_routes(api: Api) -> None:
    document = (await api.client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/api/v1/webhooks/deliveries"]) == {"get"}
    assert set(paths["/api/v1/webhooks/deliveries/{delivery_id}"]) == {"get"}
    replay_op = paths["/api/v1/webhooks/deliveries/{delivery_id}/replay"]["post"]
    assert {"202", "403", "404", "409"} <= set(replay_op["responses"])
    assert replay_op["security"] == [{"apiKey": []}]
    assert set(paths["/api/v1/webhooks/deliveries/replay"]) == {"post"}
    assert set(paths["/api/v1/webhooks/rejections"]) == {"get"}
    details = document["components"]["schemas"]["DeliveryDetails"]["properties"]
    assert {"headers", "body", "body_base64", "status", "job_id"} <= set(details)


# -- replay against a dispatcher -----------------------------------------------------------


def test_a_replay_racing_a_dispatcher_waits_for_it_then_refuses(database: str) -> None:
    """The dispatcher marks the delivery `processing` in a transaction still open when the
    replay starts: the replay waits for that transaction (the row is locked before it is
    read), sees `processing`, and refuses; no job is queued and the status stays."""
    config = make_config(database)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        with store.transaction() as conn:
            job = running_job(conn, None)  # the dispatcher's job, running
        delivery = add_delivery(store, status="pending", job_id=job)
        outcome: list[BaseException | object] = []

        def replay_it() -> None:
            try:
                outcome.append(replay(store, queue, delivery, config=config))
            except BaseException as error:  # handed to the test thread
                outcome.append(error)

        with store.transaction() as dispatcher:
            assert start_delivery(dispatcher, delivery, time.time()) is not None
            racing = threading.Thread(target=replay_it)
            racing.start()
            racing.join(0.5)
            # The fault really happened: the replay was held while the dispatcher's
            # transaction was open.
            assert racing.is_alive() and outcome == []
        racing.join(15)
        assert not racing.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], WebhookError), outcome
        assert "being processed" in str(outcome[0])
        found = get_delivery(store.engine, delivery)
        assert found is not None and found.status == "processing" and found.job_id == job
        assert [j.id for j in queue.list(JobFilter(limit=10))] == [job]
    finally:
        queue.close()
        store.close()


def test_replay_and_replay_failed_refuse_what_they_cannot_do(database: str) -> None:
    config = make_config(database)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        with pytest.raises(LookupError, match="no webhook delivery with id 77"):
            replay(store, queue, 77)
        with pytest.raises(ValueError, match="limit is 1..1000"):
            replay_failed(store, queue, limit=0)
        assert replay_failed(store, queue) == []
        failed = add_delivery(store, source="billing")
        assert replay_failed(store, queue, source="shop") == []
        assert replay_failed(store, queue, source="billing") == [failed]
        assert queue.list(JobFilter(limit=10))[0].args == {"delivery": failed, "source": "billing"}
    finally:
        queue.close()
        store.close()


def test_a_delivery_whose_job_is_gone_is_replayed(api: Api) -> None:
    """A worker lost on the last attempt: the queue dead-lettered the job without running
    it, and the delivery was left `processing`. Nothing would ever finish it."""
    stuck = add_delivery(api.store, status="processing", attempts=5)
    with api.store.transaction() as conn:
        job = row(api.store, stuck)["job_id"]
        conn.execute(sa.update(jobs).where(jobs.c.id == job).values(status="failed"))
    assert replay_failed(api.store, api.queue) == [stuck]
    assert row(api.store, stuck)["status"] == "pending"
    again = add_delivery(api.store, status="processing", attempts=5)
    with api.store.transaction() as conn:
        job = row(api.store, again)["job_id"]
        conn.execute(sa.update(jobs).where(jobs.c.id == job).values(status="failed"))
    assert replay(api.store, api.queue, again).status == "pending"
