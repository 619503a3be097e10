"""`interlink webhooks list | show | replay | rejected` on the SQLite database of a real
interlink.yaml: tables that fit 80 columns, everything of one delivery, replays that queue a
`webhook.process` job, and one line on stderr with exit 2 for what cannot be done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from interlink.cli.main import app
from interlink.config import load_config
from interlink.jobs import JobFilter, open_queue
from interlink.store import Store, deliveries, rejections
from interlink.webhooks import PROCESS_KIND
from tests.webhooks.test_deliveries_api import running_job

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONFIG = """
database: sqlite:///{db}
webhooks:
  shop:
    scheme: standard
    secret: {secret}
    max_attempts: 4
  billing_with_a_rather_long_source_name:
    scheme: stripe
    secret: whsec_billing_secret_for_tests
"""
BODY = (
    b'{"id":"evt_1","type":"customer.updated","data":{"object":{"id":"cus_9",'
    b'"email":"zoe@example.com","name":"Zo\xc3\xab [admin]"}}}'
)
NOW = 1_796_000_000.0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    config = tmp_path / "interlink.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "state.db", secret=SECRET))
    return config


def invoke(project: Path, *args: str, width: int = 80) -> Result:
    return CliRunner().invoke(
        app, ["webhooks", *args, "-c", str(project)], env={"COLUMNS": str(width)}
    )


def add(project: Path, **values: Any) -> int:
    """A delivery row as the inbox would have stored it."""
    store = Store.open(load_config(project).database)
    try:
        with store.transaction() as conn:
            if values.get("status") == "processing":  # an attempt under way: a running job
                values["job_id"] = running_job(conn, values.get("job_id"))
            count = conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one()
            row = {
                "source": "shop",
                "delivery_id": f"msg_2Lh9KIu3kl8YWJbHqD5fHC3sQ0v{count}",
                "event_type": "customer.updated",
                "status": "failed",
                "received_at": NOW + count,
                "attempts": 4,
                "last_error": "HTTP 503 from shop.customers after 3 retries: Service Unavailable",
                "body": BODY,
                "headers": {
                    "webhook-id": "msg_1",
                    "webhook-timestamp": str(int(NOW)),
                    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                },
                "job_id": None,
                "processed_at": NOW + count + 5,
                **values,
            }
            inserted = conn.execute(sa.insert(deliveries).values(**row)).inserted_primary_key
        assert inserted is not None
        return int(inserted[0])
    finally:
        store.close()


def stored(project: Path, delivery: int) -> dict[str, Any]:
    store = Store.open(load_config(project).database)
    try:
        with store.engine.connect() as conn:
            found = conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery)).first()
        assert found is not None
        return dict(found._mapping)
    finally:
        store.close()


def queued(project: Path) -> list[Any]:
    config = load_config(project)
    store = Store.open(config.database)
    queue = open_queue(config, store)
    try:
        return queue.list(JobFilter(limit=100))
    finally:
        queue.close()
        store.close()


def fits(output: str, width: int = 80) -> None:
    too_wide = [line for line in output.splitlines() if len(line) > width]
    assert too_wide == [], "\n".join(too_wide)


def test_list_fits_80_columns_and_filters(project: Path) -> None:
    empty = invoke(project, "list")
    assert empty.exit_code == 0 and "No webhook deliveries." in empty.stdout
    first = add(project)
    second = add(
        project,
        source="billing_with_a_rather_long_source_name",
        event_type="invoice.payment_succeeded",
        status="processed",
        last_error=None,
    )
    third = add(project, status="pending", last_error=None, event_type=None)

    listed = invoke(project, "list")
    assert listed.exit_code == 0, listed.output
    fits(listed.stdout)
    out = listed.stdout
    assert out.index(f" {third} ") < out.index(f" {second} ") < out.index(f" {first} ")
    for word in ("failed", "processed", "pending", "customer.updated", "HTTP 503"):
        assert word in out

    failed = invoke(project, "list", "--status", "failed", "--source", "shop")
    assert failed.exit_code == 0 and "failed" in failed.stdout
    assert "processed" not in failed.stdout and "pending" not in failed.stdout

    page = invoke(project, "list", "--limit", "2")
    assert f"--before {second}" in page.stdout
    older = json.loads(invoke(project, "list", "--before", str(second), "--json").stdout)
    assert [d["id"] for d in older["items"]] == [first] and older["next_before"] is None

    bad = invoke(project, "list", "--status", "done")
    assert bad.exit_code == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "--status: expected one of pending, processing, processed, failed, ignored, held; "
        "got 'done'"
    ]


def test_show_gives_everything_with_the_json_body_indented(project: Path) -> None:
    delivery = add(project, job_id=12, result={"run_job": 40})
    shown = invoke(project, "show", str(delivery))
    assert shown.exit_code == 0, shown.output
    fits(shown.stdout)
    out = shown.stdout
    for text in (
        f"Webhook delivery {delivery}",
        "msg_2Lh9KIu3kl8YWJbHqD5fHC3sQ0v0",
        "customer.updated",
        "failed",
        "HTTP 503 from shop.customers",
        "webhook-timestamp",
        str(int(NOW)),
        '"run_job": 40',
        '"email": "zoe@example.com"',  # indented JSON, one key a line
        '"name": "Zoë [admin]"',  # as text: no markup eaten, UTF-8 kept
    ):
        assert text in out, text
    assert '    "object": {' in out
    # The signature is masked; no secret of the config shows.
    assert "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN" not in out and "***" in out
    assert SECRET not in out and "whsec_billing_secret" not in out

    raw = add(project, body=b"\x00\x01binary\xff", status="pending", last_error=None)
    binary = invoke(project, "show", str(raw))
    assert binary.exit_code == 0 and "not UTF-8; base64" in binary.stdout
    assert "AAFiaW5hcnn/" in binary.stdout

    as_json = json.loads(invoke(project, "show", str(delivery), "--json").stdout)
    assert as_json["body"] == BODY.decode() and as_json["body_base64"] is None
    assert as_json["headers"]["webhook-signature"] == "***"

    missing = invoke(project, "show", "999")
    assert missing.exit_code == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        "no webhook delivery with id 999; see interlink webhooks list"
    ]


def test_replay_one_queues_a_process_job(project: Path) -> None:
    delivery = add(project, job_id=3)
    replayed = invoke(project, "replay", str(delivery))
    assert replayed.exit_code == 0, replayed.output
    jobs = queued(project)
    assert len(jobs) == 1
    job = jobs[0]
    assert job.kind == PROCESS_KIND and job.status == "queued" and job.max_attempts == 4
    assert job.args == {"delivery": delivery, "source": "shop"}
    assert replayed.stdout.strip() == (
        f"Replayed webhook delivery {delivery} (shop customer.updated): pending, job {job.id}."
    )
    row = stored(project, delivery)
    assert row["status"] == "pending" and row["job_id"] == job.id and row["attempts"] == 4

    busy = add(project, status="processing", job_id=8)
    refused = invoke(project, "replay", str(busy))
    assert refused.exit_code == 2 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert f"webhook delivery {busy} is being processed right now" in refused.stderr
    # Nothing new: the replayed delivery's job, and the busy one's running job.
    assert stored(project, busy)["status"] == "processing" and len(queued(project)) == 2

    missing = invoke(project, "replay", "4242")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "no webhook delivery with id 4242; see interlink webhooks list"


def test_replay_failed_of_one_source_or_all(project: Path) -> None:
    none = invoke(project, "replay", "--failed")
    assert none.exit_code == 0
    assert none.stdout.strip() == "No failed webhook deliveries: nothing to replay."

    shop = [add(project) for _ in range(2)]
    other = add(project, source="billing_with_a_rather_long_source_name")
    add(project, status="processed", last_error=None)

    some = invoke(project, "replay", "--failed", "--source", "shop")
    assert some.exit_code == 0, some.output
    assert some.stdout.strip() == (
        f"Replayed 2 failed webhook deliveries of source 'shop': {shop[0]}, {shop[1]}."
    )
    rest = invoke(project, "replay", "--failed")
    assert rest.stdout.strip() == f"Replayed 1 failed webhook deliveries: {other}."
    again = invoke(project, "replay", "--failed", "--source", "shop")
    assert again.exit_code == 0 and "No failed webhook deliveries of source 'shop'" in again.stdout
    assert sorted(job.args["delivery"] for job in queued(project)) == [*shop, other]

    for args, message in [
        ((), "give a delivery ID or --failed (one of the two)"),
        (("1", "--failed"), "give a delivery ID or --failed (one of the two)"),
        (("1", "--source", "shop"), "--source goes with --failed"),
    ]:
        wrong = invoke(project, "replay", *args)
        assert wrong.exit_code == 2 and wrong.stderr.strip() == message, args


def test_rejected_lists_refusals_in_80_columns(project: Path) -> None:
    empty = invoke(project, "rejected")
    assert empty.exit_code == 0 and "No rejected deliveries." in empty.stdout
    store = Store.open(load_config(project).database)
    try:
        with store.transaction() as conn:
            for n, (source, reason, status) in enumerate(
                [
                    ("shop", "signature_mismatch", 401),
                    ("billing_with_a_rather_long_source_name", "timestamp_out_of_tolerance", 401),
                    ("shop", "malformed_header", 400),
                ]
            ):
                conn.execute(
                    sa.insert(rejections).values(
                        source=source,
                        reason=reason,
                        status=status,
                        message="no active secret produces the signature in webhook-signature",
                        address="2001:db8::7",
                        received_at=NOW + n,
                    )
                )
    finally:
        store.close()
    listed = invoke(project, "rejected")
    assert listed.exit_code == 0, listed.output
    fits(listed.stdout)
    assert listed.stdout.index("malformed_header") < listed.stdout.index("signature_mismatch")
    assert "2001:db8::7" in listed.stdout
    shop = json.loads(invoke(project, "rejected", "--source", "shop", "--json").stdout)
    assert [r["reason"] for r in shop] == ["malformed_header", "signature_mismatch"]
    one = json.loads(invoke(project, "rejected", "--limit", "1", "--json").stdout)
    assert len(one) == 1 and one[0]["reason"] == "malformed_header"
