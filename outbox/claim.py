"""The relay's claim: which outbox rows one relay may send now, and the leases that say so.

A key's rows go only from its oldest unpublished row (its head) on, and only by the relay
holding the lease on that head (claimed_by/claimed_until), so one key is in flight in one
relay at a time (outbox/relay.py has the guarantees). A claim is one statement (its own
transaction), its cost bounded by the batch and the number of keys, never by the rows
waiting:

1. Heads among the oldest due pending rows: at most SCAN_ROWS_PER_BATCH x batch of them
   through their partial index; of those only each key's first can be its head, and it
   is one when no older row of its key is unpublished (one probe of the (key, id) partial
   index per key in the window). FOR UPDATE SKIP LOCKED: a head another relay is claiming
   right now is passed over.
2. The batch: each head's run (its key's rows from the head on), the oldest heads first,
   at most ROWS_PER_KEY rows a key, up to the batch size; and the lease on the heads whose
   rows made it into the batch. The other heads stay free for other relays.

If the window was full but its heads left the batch short (a few keys with long backlogs
behind a dead or retrying head fill it), or gave nothing, a second statement finds heads
key by key instead (a loose index scan: one probe per key that has unpublished rows) and
fills the rest of the batch the same way.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from outbox.models import OutboxEvent, OutboxStatus

SCAN_ROWS_PER_BATCH = 10
# A backlog over few keys spreads over batch / ROWS_PER_KEY keys a batch instead of every key
# for a row or two each: with 50 keys and batches of 100, one relay leases 5 keys and more
# relays find 45 free ones, instead of one relay holding all 50 while the others wait. With
# many keys (the usual case: a customer's events are few) a batch is the oldest heads, one
# or two rows each. Fewer than 5 keys with backlogs give smaller batches. A constant (not
# batch / heads found): with a computed LIMIT PostgreSQL guesses a tenth of each key's rows,
# and over a 200,000-row backlog that guess crosses jit_above_cost: 30 ms of JIT per claim.
ROWS_PER_KEY = 20

# The relay's SQL (here and in outbox/outcome.py) names the table as the model does, and
# takes statuses as parameters: Django binds them on the client (no server_side_binding),
# so PostgreSQL plans with the values and still matches the partial indexes' WHERE status.
OUTBOX_TABLE = OutboxEvent._meta.db_table
STATUS_PARAMS = {"pending": OutboxStatus.PENDING, "published": OutboxStatus.PUBLISHED}

# 1. Heads among the oldest due pending rows.
_WINDOW_HEADS = f"""
candidates AS MATERIALIZED (
    SELECT id, key, next_attempt_at FROM {OUTBOX_TABLE}
    WHERE status = %(pending)s AND next_attempt_at <= now()
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY next_attempt_at, id
    LIMIT %(scan)s
), firsts AS (
    -- A later row of a key in the window has that key's first row before it: not a head.
    SELECT DISTINCT ON (key) id, key, next_attempt_at FROM candidates ORDER BY key, id
), heads AS MATERIALIZED (
    SELECT o.id, o.key, o.next_attempt_at FROM firsts w
    JOIN {OUTBOX_TABLE} o ON o.id = w.id
    -- Again on o: after waiting for a row lock PostgreSQL re-checks only conditions on the
    -- locked row itself, so a head another relay leased (or published) meanwhile drops out.
    WHERE o.status = %(pending)s AND (o.claimed_until IS NULL OR o.claimed_until < now())
      -- The key's first unpublished row is this one: a scalar subquery, so one probe of the
      -- (key, id) partial index per key. (Written as NOT EXISTS, PostgreSQL turned it into a
      -- hash anti join over every unpublished row: 35 ms a claim at 20,000 pending.)
      AND (
        SELECT first.id FROM {OUTBOX_TABLE} first
        WHERE first.key = w.key AND first.status <> %(published)s
        ORDER BY first.id LIMIT 1
    ) = w.id
    ORDER BY w.next_attempt_at, w.id
    LIMIT %(limit)s
    FOR UPDATE OF o SKIP LOCKED
)
"""

# 2. Heads found key by key (a loose index scan: one probe per key with unpublished rows).
_KEY_HEADS = f"""
keyheads AS (
    WITH RECURSIVE walk AS (
        (SELECT key, id FROM {OUTBOX_TABLE} WHERE status <> %(published)s ORDER BY key, id LIMIT 1)
        UNION ALL
        SELECT next_head.key, next_head.id FROM walk h CROSS JOIN LATERAL (
            SELECT key, id FROM {OUTBOX_TABLE}
            WHERE status <> %(published)s AND key > h.key
            ORDER BY key, id LIMIT 1
        ) next_head
    )
    SELECT id FROM walk
), heads AS MATERIALIZED (
    SELECT o.id, o.key, o.next_attempt_at FROM keyheads h
    JOIN {OUTBOX_TABLE} o ON o.id = h.id
    WHERE o.status = %(pending)s AND o.next_attempt_at <= now()
      AND (o.claimed_until IS NULL OR o.claimed_until < now())
      AND o.key <> ALL(%(taken)s)
    ORDER BY o.next_attempt_at, o.id
    LIMIT %(limit)s
    FOR UPDATE OF o SKIP LOCKED
)
"""

# 3. The batch from the heads, and the lease on the heads whose rows made it. The
# data-modifying CTE runs to completion although nothing reads it.
_BATCH = f"""
, ranked AS (
    SELECT key, row_number() OVER (ORDER BY next_attempt_at, id) AS position FROM heads
), batch AS MATERIALIZED (
    SELECT r.*, h.position FROM ranked h
    CROSS JOIN LATERAL (
        SELECT id, event_id, event_type, topic, key, payload, headers, status, attempts, next_attempt_at,
               created_at
        FROM {OUTBOX_TABLE}
        WHERE key = h.key AND status <> %(published)s
        ORDER BY id
        LIMIT %(per_key)s
    ) AS r
    ORDER BY h.position, r.id
    LIMIT %(limit)s
), leased AS (
    UPDATE {OUTBOX_TABLE} SET claimed_by = %(lease)s, claimed_until = now() + %(lease_for)s
    WHERE id IN (SELECT id FROM heads WHERE key IN (SELECT key FROM batch))
)
SELECT id, event_id, event_type, topic, key, payload, headers, status, attempts,
       next_attempt_at <= now(), extract(epoch FROM created_at)::float8, %(window)s
FROM batch ORDER BY position, id
"""

_WINDOW_CLAIM_SQL = "WITH " + _WINDOW_HEADS + _BATCH.replace("%(window)s", "(SELECT count(*) FROM candidates)")
_KEY_CLAIM_SQL = "WITH " + _KEY_HEADS + _BATCH.replace("%(window)s", "0")


@dataclass(slots=True)
class Claimed:
    """An outbox row in a relay's batch: what sending it and recording the outcome need."""

    id: int
    event_id: uuid.UUID
    event_type: str
    topic: str
    key: str
    # The payload as PostgreSQL prints jsonb: the relay sends these very bytes (outbox/relay.py).
    payload_json: str
    headers: dict[str, Any]
    status: str
    attempts: int
    # Whether its next attempt is due, on the database's clock (the one that set it).
    due: bool
    # Seconds since the epoch: a float loads in C, a timestamptz through Django's Python loader.
    created_epoch: float
    # Where Kafka put it, from its acknowledgement (set by the relay's send; recorded with the outcome).
    kafka_partition: int | None = None
    kafka_offset: int | None = None


def claim(batch_size: int, lease: uuid.UUID) -> list[Claimed]:
    """Lease heads and return the rows to send now: each leased key's run from its head, in order.

    One statement (its own transaction: the heads' row locks last only while it runs), a
    second one, key by key, when the window's heads left the batch short and the window was
    full or gave nothing. A key's run stops before its first row that may not go now (dead,
    or waiting for its retry). Returns [] if nothing is due; heads of keys that then send
    nothing keep their lease until the caller records the batch (or releases them).
    """
    scan = batch_size * SCAN_ROWS_PER_BATCH
    params: dict[str, Any] = {
        "scan": scan,
        "limit": batch_size,
        "per_key": ROWS_PER_KEY,
        "lease": lease,
        # The lease's end on the database's clock, the one every relay compares it with.
        "lease_for": timedelta(seconds=settings.OUTBOX_RELAY_LEASE_SECONDS),
        **STATUS_PARAMS,
    }
    with connection.cursor() as cursor:
        cursor.execute(_WINDOW_CLAIM_SQL, params)
        found = cursor.fetchall()
        window_full = bool(found) and found[0][-1] >= scan
        if len(found) < batch_size and (window_full or not found):
            taken = list({values[4] for values in found})
            cursor.execute(_KEY_CLAIM_SQL, {**params, "limit": batch_size - len(found), "taken": taken})
            found += cursor.fetchall()
    # Django loads jsonb as text (JSONField decodes it). The payload stays text: the relay sends
    # it as it is; the headers are decoded (each is a Kafka header).
    rows = [
        Claimed(i, e, t, topic, key, payload, json.loads(headers), *rest)
        for i, e, t, topic, key, payload, headers, *rest, _window in found
    ]
    sendable: list[Claimed] = []
    stopped: set[str] = set()
    for row in rows:
        # A key stops at its first row that may not go now: dead, or waiting for its retry.
        if row.key in stopped or row.status != OutboxStatus.PENDING or not row.due:
            stopped.add(row.key)
            continue
        sendable.append(row)
    return sendable
