"""A batch of deliveries stored on PostgreSQL in one statement: one round trip, one commit.

Stored the general way, a batch took six round trips (BEGIN, the deliveries' INSERT, the
jobs' ids, the jobs' INSERT, the deliveries' job ids, COMMIT), and with three writers the
round trips, not the database, set the rate. Here one statement does it all, run on an
autocommit connection, so PostgreSQL commits it as it ends:

1. `incoming`: the batch, one row per distinct (source, delivery id), numbered into
   chunks of at most BATCH_SIZE per source (a job's share);
2. `chunks`: a new job id per chunk;
3. `stored`: the deliveries inserted with their chunk's job id, skipping those stored
   before (ON CONFLICT DO NOTHING), in key order (two writers wait for each other in one
   order, never in a cycle); it returns what it inserted;
4. `queued`: a job for each chunk that got at least one new delivery, naming exactly the
   deliveries `stored` returned (jobs/_defer_sql.py's insert, the queue's own rows).

A chunk whose deliveries were all stored before wastes a job id, and nothing else. Either
the whole statement commits or nothing does: a delivery is never stored without its job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from interlink.jobs import JOB_ID, insert_jobs_from, queue_parameters

from ._job import BATCH_SIZE, PROCESS_KIND

__all__ = ["store_batch"]

_STATEMENT = sa.text(
    f"""
    WITH incoming AS (
        SELECT t.*,
               (row_number() OVER (PARTITION BY t.source ORDER BY t.delivery_id) - 1)
                   / {BATCH_SIZE} AS chunk
          FROM unnest(CAST(:sources AS varchar[]), CAST(:ids AS varchar[]),
                      CAST(:types AS varchar[]), CAST(:received AS float8[]),
                      CAST(:bodies AS bytea[]), CAST(:headers AS text[]))
               AS t(source, delivery_id, event_type, received_at, body, headers)
    ),
    chunks AS (
        SELECT c.source, c.chunk, {JOB_ID} AS job_id
          FROM (SELECT DISTINCT source, chunk FROM incoming) AS c
    ),
    stored AS (
        INSERT INTO interlink_webhook_deliveries (source, delivery_id, event_type, status,
            received_at, attempts, body, headers, job_id)
        SELECT i.source, i.delivery_id, i.event_type, 'pending', i.received_at, 0, i.body,
               CAST(i.headers AS json), c.job_id
          FROM incoming AS i JOIN chunks AS c USING (source, chunk)
         ORDER BY i.source, i.delivery_id
        ON CONFLICT (source, delivery_id) DO NOTHING
        RETURNING id, source, delivery_id, job_id
    ),
    new_jobs AS (
        SELECT s.job_id AS id, CAST(:kind AS varchar) AS kind,
               json_build_object('deliveries', json_agg(s.id ORDER BY s.id),
                                 'source', min(s.source)) AS args
          FROM stored AS s
         GROUP BY s.job_id
    ),
    queued AS ({insert_jobs_from("new_jobs")})
    SELECT id, source, delivery_id, job_id FROM stored
    """
)


def store_batch(
    conn: sa.Connection, batch: Sequence[Any], *, max_attempts: int
) -> dict[tuple[str, str], tuple[int, int]]:
    """Store the new deliveries of `batch` (Arrivals) with their jobs; for each one
    inserted, its (row id, job id). `conn` must be in autocommit: the statement is its
    own transaction."""
    first: dict[tuple[str, str], Any] = {}
    for arrival in batch:
        first.setdefault((arrival.source, arrival.delivery_id), arrival)
    arrivals = list(first.values())
    parameters = {
        "sources": [a.source for a in arrivals],
        "ids": [a.delivery_id for a in arrivals],
        "types": [a.event_type for a in arrivals],
        "received": [a.received_at for a in arrivals],
        "bodies": [a.body for a in arrivals],
        "headers": [orjson.dumps(a.headers).decode() for a in arrivals],
        "kind": PROCESS_KIND,
        "max_attempts": max_attempts,
        **queue_parameters(),
    }
    return {
        (row.source, row.delivery_id): (int(row.id), int(row.job_id))
        for row in conn.execute(_STATEMENT, parameters)
    }
