"""The outbox relay: claim due rows, send them to Kafka, record the outcome.

Guarantees (docs/architecture.md, "Outbox relay"):

* At-least-once: a row is marked published only after Kafka acknowledged it
  (acks=all). A relay that dies before marking leaves its rows pending, and
  the next run sends them again with the same event ids.
* Per-key order with any number of relays: a run first takes a transaction
  advisory lock on every key it will send, so one key is in flight in one
  relay at a time, and it sends a key's rows only from the key's oldest
  unpublished row on. A key whose oldest row waits for a retry, or is dead,
  sends nothing until that row is published (or requeued/discarded by staff).
* Rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED and stay locked
  until their outcome is committed in the same transaction.
"""

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from kafka import KafkaProducer
from kafka.errors import KafkaError

from outbox.models import OutboxEvent, OutboxStatus
from outbox.producer import producer_discard, producer_get

logger = logging.getLogger(__name__)

# First argument of the two-key advisory lock: keeps our locks apart from any
# other advisory-lock user of the same database.
ADVISORY_LOCK_NAMESPACE = 7_271_001
# How long one run keeps taking batches. Short, so a worker slot frees up soon
# and beat's next sweep (or the next on-commit kick) carries on.
DEFAULT_TIME_BUDGET_SECONDS = 5.0
ACK_TIMEOUT_SECONDS = 15.0

# The lock is tried while the ordered heads are read, and the LIMIT stops the
# reading: concurrent relays skip keys another relay holds and take the next
# ones, instead of all aiming at the same oldest heads. MATERIALIZED keeps
# PostgreSQL from evaluating the (volatile) lock function on every head first.
_CLAIM_KEYS_SQL = """
WITH heads AS (
    SELECT DISTINCT ON (key) key, id, status, next_attempt_at
    FROM outbox_outboxevent
    WHERE status <> 'published'
    ORDER BY key, id
), ready AS MATERIALIZED (
    SELECT key, id FROM heads
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY id
)
SELECT key FROM ready
WHERE pg_try_advisory_xact_lock(%(namespace)s, hashtext(key))
LIMIT %(limit)s
"""

_CLAIM_ROWS_SQL = """
SELECT id FROM outbox_outboxevent
WHERE key = ANY(%(keys)s) AND status <> 'published'
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""


@dataclass
class RelayResult:
    published: int = 0
    failed: int = 0
    batches: int = 0


def backoff_seconds(attempts: int) -> float:
    """Capped exponential backoff with jitter: base * 2^(n-1), capped, times 0.5..1."""
    base = settings.OUTBOX_BACKOFF_BASE_SECONDS
    cap = settings.OUTBOX_BACKOFF_MAX_SECONDS
    return float(min(cap, base * 2 ** max(attempts - 1, 0)) * random.uniform(0.5, 1.0))


def _claim(batch_size: int) -> list[OutboxEvent]:
    """Lock up to batch_size sendable rows: each key's run of rows from its oldest unpublished one."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_KEYS_SQL, {"limit": batch_size, "namespace": ADVISORY_LOCK_NAMESPACE})
        keys = [row[0] for row in cursor.fetchall()]
        if not keys:
            return []
        cursor.execute(_CLAIM_ROWS_SQL, {"keys": keys, "limit": batch_size})
        ids = [row[0] for row in cursor.fetchall()]
    rows = list(OutboxEvent.objects.filter(id__in=ids).order_by("id"))
    now = timezone.now()
    sendable: list[OutboxEvent] = []
    stopped: set[str] = set()
    for row in rows:
        # A key stops at its first row that may not go now: dead, or waiting for its retry.
        if row.key in stopped or row.status != OutboxStatus.PENDING or row.next_attempt_at > now:
            stopped.add(row.key)
            continue
        sendable.append(row)
    return sendable


def _send(producer: KafkaProducer, rows: list[OutboxEvent]) -> dict[int, KafkaError]:
    """Send every row and wait for every acknowledgement. Returns the failures by row id."""
    failures: dict[int, KafkaError] = {}
    futures = []
    refused_keys: set[str] = set()
    for row in rows:
        if row.key in refused_keys:
            continue  # an earlier row of this key was refused: sending this one would overtake it
        try:
            future = producer.send(
                row.topic,
                key=row.key.encode(),
                value=json.dumps(row.payload, separators=(",", ":")).encode(),
                headers=[(name, str(value).encode()) for name, value in row.headers.items()],
            )
        except KafkaError as exc:
            failures[row.id] = exc
            if exc.retriable:  # broker unreachable: the rest would wait max_block_ms each
                for rest in rows[rows.index(row) + 1 :]:
                    failures[rest.id] = exc
                break
            refused_keys.add(row.key)
            continue
        futures.append((row, future))
    deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
    for row, future in futures:
        try:
            future.get(timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaError as exc:
            failures[row.id] = exc
    return failures


def _record(rows: list[OutboxEvent], failures: dict[int, KafkaError]) -> tuple[int, int]:
    """Mark sent rows published (one UPDATE) and schedule the retry of each key's first failure."""
    now = timezone.now()
    failed_keys: set[str] = set()
    published_ids: list[int] = []
    for row in rows:
        if row.key in failed_keys:
            continue  # maybe delivered, but behind a failure: it goes again after it (a duplicate)
        error = failures.get(row.id)
        if error is None:
            published_ids.append(row.id)
            continue
        failed_keys.add(row.key)
        row.attempts += 1
        row.last_error = f"{type(error).__name__}: {error}"[:2000]
        row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempts))
        # Dead is for a row Kafka refuses, not for an outage: a broker that is down
        # for an hour must not kill every event written meanwhile.
        if not error.retriable and row.attempts >= settings.OUTBOX_MAX_RETRY_ATTEMPTS:
            row.status = OutboxStatus.DEAD
            logger.error("Outbox event %s is dead after %d attempts: %s", row.event_id, row.attempts, row.last_error)
        row.save(update_fields=["attempts", "last_error", "next_attempt_at", "status"])
    OutboxEvent.objects.filter(id__in=published_ids).update(status=OutboxStatus.PUBLISHED, published_at=now)
    return len(published_ids), len(failed_keys)


def relay_batch(*, producer: KafkaProducer | None, batch_size: int) -> tuple[int, int] | None:
    """Relay one batch in one transaction. Returns (published, failed), or None if nothing was due."""
    with transaction.atomic():
        rows = _claim(batch_size)
        if not rows:
            return None
        try:
            failures = _send(producer or producer_get(), rows)
        except KafkaError as exc:  # could not even build a producer: the broker is unreachable
            failures = {row.id: exc for row in rows}
        return _record(rows, failures)


def relay_run(
    *, producer: KafkaProducer | None = None, batch_size: int | None = None, time_budget: float | None = None
) -> RelayResult:
    """Take batches until nothing is due, a batch fails, or the time budget is spent.

    Without `producer` the process's shared producer is used, and discarded after
    any failure so the next run starts with a fresh one.
    """
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    deadline = time.monotonic() + (DEFAULT_TIME_BUDGET_SECONDS if time_budget is None else time_budget)
    result = RelayResult()
    while time.monotonic() < deadline:
        outcome = relay_batch(producer=producer, batch_size=batch_size)
        if outcome is None:
            break
        result.batches += 1
        result.published += outcome[0]
        result.failed += outcome[1]
        if outcome[1] and producer is None:
            producer_discard()
        if outcome[1] and not outcome[0]:
            break  # nothing got through (broker down?): stop here instead of failing batch after batch
    if result.published or result.failed:
        logger.info(
            "Outbox relay: %d published, %d failed in %d batches", result.published, result.failed, result.batches
        )
    return result
