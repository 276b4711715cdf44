"""The outbox relay: claim due rows, send them to Kafka, record the outcome.

Guarantees (docs/architecture.md, "Outbox relay"):

* At-least-once: a row is marked published only after Kafka acknowledged it
  (acks=all). A relay that dies before marking leaves its rows pending, and
  the next run sends them again with the same event ids.
* Per-key order with any number of relays: a relay sends a key's rows only
  from the key's oldest unpublished row (its head) on, and only while it
  holds a lease on that head (claimed_by/claimed_until), so one key is in
  flight in one relay at a time. A key whose head waits for a retry, is dead
  or is leased by another relay sends nothing until that changes.
* No transaction is open while the relay waits for Kafka: leases are taken
  in one short transaction (heads picked with FOR UPDATE SKIP LOCKED, so
  concurrent relays take different keys), the rows are sent, and the outcome
  is written in a second short transaction. A relay that dies mid-batch
  leaves leases that run out after OUTBOX_RELAY_LEASE_SECONDS; another relay then takes
  the rows over and sends them again (same event ids).
* The claim reads a bounded window of due pending rows plus one index probe
  per candidate, and, when a few long-backlogged keys fill that window, one
  probe per key: its cost follows the batch and the number of keys, never
  the number of rows waiting.
"""

import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from kafka import KafkaProducer
from kafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from orders_project import tracing
from outbox import metrics
from outbox.models import OutboxEvent, OutboxStatus
from outbox.producer import producer_discard, producer_get

logger = logging.getLogger(__name__)

# How long one run keeps taking batches. Short, so a worker slot frees up soon
# and beat's next sweep (or the next on-commit kick) carries on.
DEFAULT_TIME_BUDGET_SECONDS = 5.0
# Matches the producer's delivery timeout (orders_project.kafka): an ack later than
# that will not come.
ACK_TIMEOUT_SECONDS = 10.0

# Heads are found two ways, each bounded by the batch, not by the backlog:
# 1. the oldest due pending rows, at most SCAN_ROWS of them, through their partial
#    index, keeping those that are their key's head (no older unpublished row of the
#    key: one probe of the (key, id) partial index). With many keys this fills the
#    batch at once. SKIP LOCKED: a head another relay is leasing now is passed over.
# 2. if that window was full but gave fewer heads than the batch (a few keys with long
#    backlogs fill it), a loose index scan over the keys: one probe per key that has
#    unpublished rows, its first row being its head.
SCAN_ROWS_PER_BATCH = 10

_CLAIM_HEADS_SQL = """
WITH candidates AS MATERIALIZED (
    SELECT id, key, next_attempt_at FROM outbox_outboxevent
    WHERE status = 'pending' AND next_attempt_at <= now()
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY next_attempt_at, id
    LIMIT %(scan)s
)
SELECT o.id, o.key, (SELECT count(*) FROM candidates) FROM candidates w
JOIN outbox_outboxevent o ON o.id = w.id
-- Again on o: after waiting for a row lock PostgreSQL re-checks only conditions on the
-- locked row itself, so a head another relay leased (or published) meanwhile drops out.
WHERE o.status = 'pending' AND (o.claimed_until IS NULL OR o.claimed_until < now())
  AND NOT EXISTS (
    SELECT 1 FROM outbox_outboxevent older
    WHERE older.key = w.key AND older.status <> 'published' AND older.id < w.id
)
ORDER BY w.next_attempt_at, w.id
LIMIT %(limit)s
FOR UPDATE OF o SKIP LOCKED
"""

_CLAIM_HEADS_BY_KEY_SQL = """
WITH RECURSIVE heads AS (
    (SELECT key, id FROM outbox_outboxevent WHERE status <> 'published' ORDER BY key, id LIMIT 1)
    UNION ALL
    SELECT next_head.key, next_head.id FROM heads h CROSS JOIN LATERAL (
        SELECT key, id FROM outbox_outboxevent
        WHERE status <> 'published' AND key > h.key
        ORDER BY key, id LIMIT 1
    ) next_head
)
SELECT o.id, o.key FROM heads h
JOIN outbox_outboxevent o ON o.id = h.id
WHERE o.status = 'pending' AND o.next_attempt_at <= now()
  AND (o.claimed_until IS NULL OR o.claimed_until < now())
  AND o.key <> ALL(%(taken)s)
ORDER BY o.next_attempt_at, o.id
LIMIT %(limit)s
FOR UPDATE OF o SKIP LOCKED
"""

# The leased keys' rows from their heads on, oldest first, as many as fit the batch.
_CLAIM_ROWS_SQL = """
SELECT id FROM outbox_outboxevent
WHERE key = ANY(%(keys)s) AND status <> 'published'
ORDER BY id
LIMIT %(limit)s
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


@transaction.atomic
def _claim(batch_size: int, lease: uuid.UUID) -> list[OutboxEvent]:
    """Lease up to batch_size keys' heads and return their sendable rows (each key's run from its head)."""
    scan = batch_size * SCAN_ROWS_PER_BATCH
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_HEADS_SQL, {"limit": batch_size, "scan": scan})
        found = cursor.fetchall()
        heads = [(head_id, key) for head_id, key, _ in found]
        window_full = bool(found) and found[0][2] >= scan
        if len(heads) < batch_size and (window_full or not found):
            taken = [key for _, key in heads]
            cursor.execute(_CLAIM_HEADS_BY_KEY_SQL, {"limit": batch_size - len(heads), "taken": taken})
            heads += cursor.fetchall()
        if not heads:
            return []
        cursor.execute(_CLAIM_ROWS_SQL, {"keys": [key for _, key in heads], "limit": batch_size})
        ids = [row[0] for row in cursor.fetchall()]
    OutboxEvent.objects.filter(id__in=[head_id for head_id, _ in heads]).update(
        claimed_by=lease, claimed_until=timezone.now() + timedelta(seconds=settings.OUTBOX_RELAY_LEASE_SECONDS)
    )
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


def _event_span(row: OutboxEvent) -> Span:
    """The PRODUCER span of one event: a child of the traceparent stored with the row, so the
    request (or lifecycle batch) that wrote the event and its delivery are one trace. The
    Kafka header keeps the stored traceparent, as the event contract says."""
    return tracing.span_start(
        f"{row.topic} publish",
        traceparent=row.headers.get("traceparent"),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": row.topic,
            "messaging.message.id": str(row.event_id),
            "messaging.kafka.message.key": row.key,
        },
    )


def _event_done(row: OutboxEvent, span: Span, metadata: Any = None, error: KafkaError | None = None) -> None:
    """End the event's span and write its log line (inside the span: the line carries its trace id)."""
    extra = {"event_id": str(row.event_id)}
    order_id = row.payload.get("data", {}).get("order_id") if isinstance(row.payload, dict) else None
    if order_id:
        extra["order_id"] = str(order_id)  # order events name their order: the trail of one order
    with trace.use_span(span, end_on_exit=True):
        if error is None:
            span.set_attribute("messaging.destination.partition.id", str(metadata.partition))
            span.set_attribute("messaging.kafka.offset", metadata.offset)
            logger.info(
                "Sent %s %s to %s[%d]@%d",
                row.event_type,
                row.event_id,
                row.topic,
                metadata.partition,
                metadata.offset,
                extra=extra,
            )
            return
        span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
        # An outage fails every row of the batch; relay_run logs that once, a refusal per event.
        level = logging.DEBUG if error.retriable else logging.WARNING
        logger.log(level, "Kafka refused %s %s: %r", row.event_type, row.event_id, error, extra=extra)


def _send(producer: KafkaProducer, rows: list[OutboxEvent]) -> dict[int, KafkaError]:
    """Send every row and wait for every acknowledgement. Returns the failures by row id."""
    failures: dict[int, KafkaError] = {}
    futures = []
    refused_keys: set[str] = set()
    for row in rows:
        if row.key in refused_keys:
            continue  # an earlier row of this key was refused: sending this one would overtake it
        span = _event_span(row)
        try:
            future = producer.send(
                row.topic,
                key=row.key.encode(),
                value=json.dumps(row.payload, separators=(",", ":")).encode(),
                headers=[(name, str(value).encode()) for name, value in row.headers.items()],
            )
        except KafkaError as exc:
            failures[row.id] = exc
            _event_done(row, span, error=exc)
            if exc.retriable:  # broker unreachable: the rest would wait max_block_ms each
                for rest in rows[rows.index(row) + 1 :]:
                    failures[rest.id] = exc
                break
            refused_keys.add(row.key)
            continue
        metrics.publish_timer(future)
        futures.append((row, future, span))
    deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
    for row, future, span in futures:
        try:
            metadata = future.get(timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaError as exc:
            failures[row.id] = exc
            _event_done(row, span, error=exc)
        else:
            _event_done(row, span, metadata)
    return failures


@transaction.atomic
def _record(rows: list[OutboxEvent], failures: dict[int, KafkaError], lease: uuid.UUID) -> tuple[int, int]:
    """Mark sent rows published (one UPDATE), schedule the retry of each key's first failure, end the lease.

    A failure is recorded only while the lease is still ours: if it ran out and
    another relay took the key over, that relay's outcome counts, not ours.
    """
    now = timezone.now()
    retried = sum(1 for row in rows if row.attempts)  # before this batch's failures count
    failed_keys: set[str] = set()
    published_ids: list[int] = []
    failed: list[OutboxEvent] = []
    for row in rows:
        if row.key in failed_keys:
            continue  # maybe delivered, but behind a failure: it goes again after it (a duplicate)
        error = failures.get(row.id)
        if error is None:
            published_ids.append(row.id)
            continue
        failed_keys.add(row.key)
        if not OutboxEvent.objects.filter(id=row.id, claimed_by=lease).exists():
            continue
        row.attempts += 1
        row.last_error = f"{type(error).__name__}: {error}"[:2000]
        row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempts))
        # Dead is for a row Kafka refuses, not for an outage: a broker that is down
        # for an hour must not kill every event written meanwhile.
        if not error.retriable and row.attempts >= settings.OUTBOX_MAX_RETRY_ATTEMPTS:
            row.status = OutboxStatus.DEAD
            logger.error("Outbox event %s is dead after %d attempts: %s", row.event_id, row.attempts, row.last_error)
        row.claimed_by, row.claimed_until = None, None
        row.save(update_fields=["attempts", "last_error", "next_attempt_at", "status", "claimed_by", "claimed_until"])
        failed.append(row)
    OutboxEvent.objects.filter(id__in=published_ids, status=OutboxStatus.PENDING).update(
        status=OutboxStatus.PUBLISHED, published_at=now, claimed_by=None, claimed_until=None
    )
    # Heads whose key stopped before them (nothing sent) give their lease back at once.
    OutboxEvent.objects.filter(claimed_by=lease).update(claimed_by=None, claimed_until=None)
    sent = set(published_ids)
    transaction.on_commit(
        lambda: metrics.relay_outcome_record(
            published=[row for row in rows if row.id in sent],
            failed=[row for row in failed if row.status != OutboxStatus.DEAD],
            dead=[row for row in failed if row.status == OutboxStatus.DEAD],
            retried=retried,
        )
    )
    return len(published_ids), len(failed_keys)


def relay_batch(*, producer: KafkaProducer | None, batch_size: int) -> tuple[int, int] | None:
    """Relay one batch: lease (short transaction), send (no transaction), record (short transaction).

    Returns (published, failed), or None if nothing was due.
    """
    lease = uuid.uuid4()
    rows = _claim(batch_size, lease)
    if not rows:
        # Heads may be leased although none of their rows may go now (dead, backing off).
        OutboxEvent.objects.filter(claimed_by=lease).update(claimed_by=None, claimed_until=None)
        return None
    try:
        failures = _send(producer or producer_get(), rows)
    except KafkaError as exc:  # could not even build a producer: the broker is unreachable
        failures = {row.id: exc for row in rows}
    return _record(rows, failures, lease)


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
