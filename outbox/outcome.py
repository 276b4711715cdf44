"""The relay's outcome of a batch: what it writes after sending, and only while it holds the lease.

A relay records a key's outcome only while its lease on the key's head is still its own and
has not run out on the database's clock; the head is locked (FOR UPDATE) for that check, so
a relay taking the key over either waits for the record or has taken it already and the
record passes the key by. A relay that ran past its lease thus writes nothing for the key
(the relay that took over sends the rows again and records them), and never clears another
relay's lease: only leases with its own token are given back.
"""

import json
import logging
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from kafka.errors import KafkaError

from outbox import metrics
from outbox.claim import OUTBOX_TABLE, STATUS_PARAMS, Claimed
from outbox.models import OutboxStatus

logger = logging.getLogger(__name__)

# The keys whose head this batch's lease still holds, locked until the record commits.
_HELD = f"""
SELECT key FROM {OUTBOX_TABLE} WHERE claimed_by = %(lease)s AND claimed_until > now() FOR UPDATE
"""

# The acknowledged rows of held keys published, with where Kafka put them (partition and
# offset), every lease of the batch given back (also those of heads whose key stopped before
# sending anything). Returns the rows it published.
_RECORD_SQL = f"""
WITH held AS MATERIALIZED ({_HELD.strip()})
UPDATE {OUTBOX_TABLE}
SET status = CASE WHEN id = ANY(%(acknowledged)s) AND status = %(pending)s THEN %(published)s ELSE status END,
    published_at = CASE WHEN id = ANY(%(acknowledged)s) AND status = %(pending)s THEN now() ELSE published_at END,
    kafka_partition = CASE WHEN id = ANY(%(acknowledged)s) AND status = %(pending)s
        THEN (%(coordinates)s::jsonb -> id::text ->> 0)::integer ELSE kafka_partition END,
    kafka_offset = CASE WHEN id = ANY(%(acknowledged)s) AND status = %(pending)s
        THEN (%(coordinates)s::jsonb -> id::text ->> 1)::bigint ELSE kafka_offset END,
    claimed_by = NULL, claimed_until = NULL
WHERE (id = ANY(%(acknowledged)s) AND status = %(pending)s AND key IN (SELECT key FROM held))
   OR claimed_by = %(lease)s
RETURNING id, status = %(published)s
"""

# A failed row of a held key: attempts + 1, the error, the next attempt and the failure's time
# (a dead row's resubmission counts its cool-down from it) on the database's clock.
_FAILED_SQL = f"""
UPDATE {OUTBOX_TABLE}
SET attempts = %(attempts)s, last_error = %(error)s, status = %(status)s,
    next_attempt_at = now() + %(backoff)s, failed_at = now()
WHERE id = %(id)s
"""


def backoff_seconds(attempts: int) -> float:
    """Capped exponential backoff with jitter: base * 2^(n-1), capped, times 0.5..1."""
    base = settings.OUTBOX_BACKOFF_BASE_SECONDS
    cap = settings.OUTBOX_BACKOFF_MAX_SECONDS
    return float(min(cap, base * 2 ** max(attempts - 1, 0)) * random.uniform(0.5, 1.0))


@contextmanager
def _atomic_if(needed: bool) -> Iterator[None]:
    if needed:
        with transaction.atomic():
            yield
    else:
        yield  # one statement: atomic by itself, no BEGIN/COMMIT round trips


def outcome_record(rows: list[Claimed], failures: dict[int, KafkaError], lease: uuid.UUID) -> tuple[int, int]:
    """Mark sent rows published, schedule the retry of each key's first failure, end the lease.

    `rows` are the rows the relay tried to send, each key's in order. Only keys whose lease is
    still held are recorded, each from its first failure on (head or not: every row of a leased
    run). Without failures one UPDATE; with failures one short transaction. Returns (rows
    published, keys that failed in the send).
    """
    retried = sum(1 for row in rows if row.attempts)  # before this batch's failures count
    failed_keys: set[str] = set()
    acknowledged: list[Claimed] = []
    failed: list[Claimed] = []
    with _atomic_if(bool(failures)), connection.cursor() as cursor:
        held: set[str] = set()
        if failures:
            cursor.execute(_HELD, {"lease": lease})
            held = {key for (key,) in cursor.fetchall()}
        for row in rows:
            if row.key in failed_keys:
                continue  # maybe delivered, but behind a failure: it goes again after it (a duplicate)
            error = failures.get(row.id)
            if error is None:
                acknowledged.append(row)
                continue
            failed_keys.add(row.key)
            if row.key not in held:
                continue  # the lease ran out: the relay that took the key over records it
            failed.append(_failure_record(cursor, row, error))
        params: dict[str, Any] = {
            "acknowledged": [row.id for row in acknowledged],
            "coordinates": _coordinates(acknowledged),
            "lease": lease,
            **STATUS_PARAMS,
        }
        cursor.execute(_RECORD_SQL, params)
        marked = {row_id for row_id, published in cursor.fetchall() if published}
        published = [row for row in acknowledged if row.id in marked]
        transaction.on_commit(
            lambda: metrics.relay_outcome_record(
                published=published,
                failed=[row for row in failed if row.status != OutboxStatus.DEAD],
                dead=[row for row in failed if row.status == OutboxStatus.DEAD],
                retried=retried,
            )
        )
    return len(published), len(failed_keys)


def _coordinates(rows: list[Claimed]) -> str:
    """{"<row id>": [partition, offset]} of acknowledged rows, for the record's UPDATE: one
    parameter, looked up per row by key (a jsonb object's keys are sorted: a binary search,
    where array_position over a batch of 10,000 would be quadratic). Rows without an
    acknowledgement's coordinates (none in the relay; tests record by hand) get NULL."""
    return json.dumps(
        {str(row.id): [row.kafka_partition, row.kafka_offset] for row in rows if row.kafka_offset is not None}
    )


def _failure_record(cursor: CursorWrapper, row: Claimed, error: KafkaError) -> Claimed:
    attempts = row.attempts + 1
    last_error = f"{type(error).__name__}: {error}"[:2000]
    # Dead is for a row Kafka refuses, not for an outage: a broker that is down
    # for an hour must not kill every event written meanwhile.
    dead = not error.retriable and attempts >= settings.OUTBOX_MAX_RETRY_ATTEMPTS
    status = OutboxStatus.DEAD if dead else row.status
    params: dict[str, Any] = {
        "id": row.id,
        "attempts": attempts,
        "error": last_error,
        "status": status,
        "backoff": timedelta(seconds=backoff_seconds(attempts)),
    }
    cursor.execute(_FAILED_SQL, params)
    row.attempts, row.status = attempts, status
    if dead:
        logger.error("Outbox event %s is dead after %d attempts: %s", row.event_id, attempts, last_error)
    return row
