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
  in one short transaction (outbox/claim.py: heads picked with FOR UPDATE
  SKIP LOCKED, so concurrent relays take different keys), the rows are sent,
  and the outcome is written by one UPDATE (a short transaction when rows
  failed). A relay that dies mid-batch leaves leases that run out after
  OUTBOX_RELAY_LEASE_SECONDS; another relay then takes the rows over and
  sends them again (same event ids).
* The claim's cost follows the batch and the number of keys, never the
  number of rows waiting (outbox/claim.py).

Per event the relay only encodes and hands the row to the producer: the log
line of each event (`Sent ... to topic[partition]@offset`, with the trace id
of the request that wrote it) is DEBUG, and its PRODUCER span is made only
when tracing exports spans or that line is logged; relay_run logs one INFO
line per run, and the metrics are counted once per batch.
"""

import json
import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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
from outbox.claim import Claimed, claim
from outbox.models import OutboxEvent, OutboxStatus
from outbox.producer import producer_discard, producer_get

logger = logging.getLogger(__name__)

# How long one run keeps taking batches. Short, so a worker slot frees up soon
# and beat's next sweep (or the next on-commit kick) carries on.
DEFAULT_TIME_BUDGET_SECONDS = 5.0
# Matches the producer's delivery timeout (orders_project.kafka): an ack later than
# that will not come.
ACK_TIMEOUT_SECONDS = 10.0

# The outcome of a batch in one statement: the acknowledged rows published, every lease of
# the batch given back (also those of heads whose key stopped before sending anything).
_RECORD_SQL = """
UPDATE outbox_outboxevent
SET status = CASE WHEN id = ANY(%(published)s) AND status = 'pending' THEN 'published' ELSE status END,
    published_at = CASE WHEN id = ANY(%(published)s) AND status = 'pending' THEN %(now)s ELSE published_at END,
    claimed_by = NULL, claimed_until = NULL
WHERE (id = ANY(%(published)s) AND status = 'pending') OR claimed_by = %(lease)s
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


Message = tuple[bytes, bytes, list[tuple[str, bytes]]]


def message_of(row: Claimed) -> Message:
    """The Kafka key, value and headers of an outbox row, as the relay sends them.

    The value is the payload's JSON as PostgreSQL prints jsonb, sent as it is (UTF-8), not
    decoded and encoded again: the contract promises JSON, not a byte form (docs/events.md).
    """
    return message_encode(row.key, row.payload_json, row.headers)


def message_encode(key: str, payload_json: str, headers: dict[str, Any]) -> Message:
    """message_of from the row's key, payload text (jsonb as PostgreSQL prints it) and headers."""
    return key.encode(), payload_json.encode(), [(name, str(text).encode()) for name, text in headers.items()]


def _event_span(row: Claimed) -> Span:
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


def _event_done(row: Claimed, span: Span | None, metadata: Any = None, error: KafkaError | None = None) -> None:
    """End the event's span and write its log line (inside the span: the line carries its trace id).

    Without a span (no tracing, DEBUG off) a sent event costs nothing here; a refused one
    still gets its span, for the trace id of its WARNING line.
    """
    if span is None:
        if error is None:
            return
        span = _event_span(row)
    extra = {"event_id": str(row.event_id)}
    payload = json.loads(row.payload_json)  # only here: a sent event without a span never decodes it
    order_id = payload.get("data", {}).get("order_id") if isinstance(payload, dict) else None
    if order_id:
        extra["order_id"] = str(order_id)  # order events name their order: the trail of one order
    with trace.use_span(span, end_on_exit=True):
        if error is None:
            span.set_attribute("messaging.destination.partition.id", str(metadata.partition))
            span.set_attribute("messaging.kafka.offset", metadata.offset)
            logger.debug(
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


def _send(producer: KafkaProducer, rows: list[Claimed]) -> dict[int, KafkaError]:
    """Send every row and wait for every acknowledgement. Returns the failures by row id."""
    failures: dict[int, KafkaError] = {}
    futures = []
    refused_keys: set[str] = set()
    # A span per event only where it is recorded or its trace id is logged (per batch: cheap).
    spans = tracing.tracing_enabled() or logger.isEnabledFor(logging.DEBUG)
    for index, row in enumerate(rows):
        if row.key in refused_keys:
            continue  # an earlier row of this key was refused: sending this one would overtake it
        span = _event_span(row) if spans else None
        try:
            key, value, headers = message_of(row)
            future = producer.send(row.topic, key=key, value=value, headers=headers)
        except KafkaError as exc:
            failures[row.id] = exc
            _event_done(row, span, error=exc)
            if exc.retriable:  # broker unreachable: the rest would wait max_block_ms each
                for rest in rows[index + 1 :]:
                    failures[rest.id] = exc
                break
            refused_keys.add(row.key)
            continue
        metrics.publish_timer(future)
        futures.append((row, future, span))
    deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
    if futures:
        # The batch is complete: send it now rather than after linger_ms (which waits for more
        # records that will not come). A timeout here shows up below, per future.
        with suppress(KafkaError):
            producer.flush(timeout=ACK_TIMEOUT_SECONDS)
    for row, future, span in futures:
        try:
            metadata = future.get(timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaError as exc:
            failures[row.id] = exc
            _event_done(row, span, error=exc)
        else:
            _event_done(row, span, metadata)
    return failures


@contextmanager
def _atomic_if(needed: bool) -> Iterator[None]:
    if needed:
        with transaction.atomic():
            yield
    else:
        yield  # one statement: atomic by itself, no BEGIN/COMMIT round trips


def _record(rows: list[Claimed], failures: dict[int, KafkaError], lease: uuid.UUID) -> tuple[int, int]:
    """Mark sent rows published, schedule the retry of each key's first failure, end the lease.

    Without failures one UPDATE; with failures one short transaction. A failure is recorded
    only while the lease is still ours: if it ran out and another relay took the key over,
    that relay's outcome counts, not ours.
    """
    now = timezone.now()
    retried = sum(1 for row in rows if row.attempts)  # before this batch's failures count
    failed_keys: set[str] = set()
    published: list[Claimed] = []
    failed: list[Claimed] = []
    with _atomic_if(bool(failures)):
        for row in rows:
            if row.key in failed_keys:
                continue  # maybe delivered, but behind a failure: it goes again after it (a duplicate)
            error = failures.get(row.id)
            if error is None:
                published.append(row)
                continue
            failed_keys.add(row.key)
            attempts = row.attempts + 1
            last_error = f"{type(error).__name__}: {error}"[:2000]
            # Dead is for a row Kafka refuses, not for an outage: a broker that is down
            # for an hour must not kill every event written meanwhile.
            dead = not error.retriable and attempts >= settings.OUTBOX_MAX_RETRY_ATTEMPTS
            still_ours = OutboxEvent.objects.filter(id=row.id, claimed_by=lease).update(
                attempts=attempts,
                last_error=last_error,
                next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts)),
                status=OutboxStatus.DEAD if dead else row.status,
                claimed_by=None,
                claimed_until=None,
            )
            if not still_ours:
                continue
            row.attempts, row.status = attempts, OutboxStatus.DEAD if dead else row.status
            if dead:
                logger.error("Outbox event %s is dead after %d attempts: %s", row.event_id, attempts, last_error)
            failed.append(row)
        with connection.cursor() as cursor:
            cursor.execute(_RECORD_SQL, {"published": [row.id for row in published], "now": now, "lease": lease})
        transaction.on_commit(
            lambda: metrics.relay_outcome_record(
                published=published,
                failed=[row for row in failed if row.status != OutboxStatus.DEAD],
                dead=[row for row in failed if row.status == OutboxStatus.DEAD],
                retried=retried,
            )
        )
    return len(published), len(failed_keys)


def relay_batch(*, producer: KafkaProducer | None, batch_size: int) -> tuple[int, int] | None:
    """Relay one batch: lease (short transaction), send (no transaction), record (one UPDATE).

    Returns (published, failed), or None if nothing was due.
    """
    lease = uuid.uuid4()
    rows = claim(batch_size, lease)
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
