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
* Each published row records where Kafka put it (partition and offset from its
  acknowledgement), in the same UPDATE that marks it published: the delivery
  auditor (outbox/audit.py) reads the record back from there.
* Two batches at a time: relay_run claims and sends the next batch while the last one's
  acknowledgements are on their way, then records the last one; once the run has a
  backlog, the last one is recorded on a connection of its own while the next is claimed
  (_Recorder). The next claim takes other keys only (the batch in flight holds the lease
  on its keys' heads until its record commits, and a row behind an unpublished one is
  never a head), so a key is never in two batches at once.
* No transaction is open while the relay waits for Kafka: leases are taken
  in one statement (outbox/claim.py: heads picked with FOR UPDATE SKIP
  LOCKED, so concurrent relays take different keys), the rows are sent, and
  the outcome is written by one UPDATE (a short transaction when rows
  failed). A relay that dies mid-batch leaves leases that run out after
  OUTBOX_RELAY_LEASE_SECONDS; another relay then takes the rows over and
  sends them again (same event ids).
* A lease is kept, not just taken: the send phase ends before the lease does
  (every Kafka wait is bounded by the time left), and the outcome is recorded
  only for keys whose lease is still the relay's on the database's clock
  (outbox/outcome.py). A relay paused past its lease records nothing and
  clears no other relay's lease.
* The claim's cost follows the batch and the number of keys, never the
  number of rows waiting (outbox/claim.py).

Per event the relay only encodes and hands the row to the producer: the log
line of each event (`Sent ... to topic[partition]@offset`, with the trace id
of the request that wrote it) is DEBUG, and its PRODUCER span is made only
when tracing exports spans or that line is logged; relay_run logs one INFO
line per run, and the metrics are counted once per batch.
"""

import contextvars
import json
import logging
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections
from kafka import KafkaProducer
from kafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from orders_project import tracing
from orders_project.kafka import delivery_timeout_seconds
from outbox import metrics
from outbox.claim import Claimed, claim
from outbox.models import OutboxEvent
from outbox.outcome import outcome_record
from outbox.producer import producer_discard, producer_get

logger = logging.getLogger(__name__)

# How long one run keeps taking batches. Short, so a worker slot frees up soon
# and beat's next sweep (or the next on-commit kick) carries on.
DEFAULT_TIME_BUDGET_SECONDS = 5.0
# The end of a batch's lease kept free for recording its outcome (at most a quarter of the
# lease): the record is a statement or two, well inside this on a working database.
RECORD_MARGIN_SECONDS = 2.0


@dataclass
class RelayResult:
    published: int = 0
    failed: int = 0
    batches: int = 0


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


@dataclass
class InFlight:
    """A batch handed to the producer whose acknowledgements are not awaited yet."""

    lease: uuid.UUID
    record_by: float  # time.monotonic() by which its outcome must be recorded (the lease's end, less the margin)
    tried: list[Claimed]  # the rows tried, each key's in order
    failures: dict[int, KafkaError]  # by row id: refused on send (acknowledgement failures join them)
    futures: list[tuple[Claimed, Any, Span | None]] = field(default_factory=list)


def _send_start(producer: KafkaProducer, batch: InFlight, rows: list[Claimed]) -> None:
    """Hand the rows to the producer, all before `batch.record_by`; their acknowledgements are
    awaited by _send_finish.

    The lease must still hold when the outcome is recorded (outbox/outcome.py), so no wait here
    runs past `record_by`: not a send's wait for a new topic's metadata (max_block_ms). Rows
    left when the time ran out are untouched (not in `batch.tried`), for a later lease.
    """
    refused_keys: set[str] = set()
    # A span per event only where it is recorded or its trace id is logged (per batch: cheap).
    spans = tracing.tracing_enabled() or logger.isEnabledFor(logging.DEBUG)
    # Lowered per send to the time left: kafka-python reads it on each send() and has no
    # per-call bound. The relay is its producer's only user, one thread at a time.
    configured_block_ms = producer.config["max_block_ms"]
    failures, futures = batch.failures, batch.futures
    try:
        for index, row in enumerate(rows):
            left = batch.record_by - time.monotonic()
            if left <= 0:
                batch.tried = rows[:index]
                break
            if row.key in refused_keys:
                continue  # an earlier row of this key was refused: sending this one would overtake it
            producer.config["max_block_ms"] = min(configured_block_ms, int(left * 1000))
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
    finally:
        producer.config["max_block_ms"] = configured_block_ms


def _send_finish(producer: KafkaProducer, batch: InFlight, *, flush: bool) -> None:
    """Wait for the batch's acknowledgements (each bounded by its record_by), noting where Kafka
    put each row and which failed.

    `flush`: send the producer's records now rather than after linger_ms (which waits for more
    records that will not come). Without it (another batch follows right behind) the records
    leave within linger_ms anyway, and a flush would also wait for the next batch's.
    """
    # The producer's delivery timeout: an acknowledgement later than that will not come.
    ack_by = min(time.monotonic() + delivery_timeout_seconds(), batch.record_by)
    if batch.futures and flush:
        # A timeout here shows up below, per future.
        with suppress(KafkaError):
            producer.flush(timeout=max(ack_by - time.monotonic(), 0.0))
    for row, future, span in batch.futures:
        try:
            metadata = future.get(timeout=max(ack_by - time.monotonic(), 0.0))
        except KafkaError as exc:
            batch.failures[row.id] = exc
            _event_done(row, span, error=exc)
        else:
            # The coordinates go into the batch's outcome UPDATE with the status (outbox/outcome.py).
            row.kafka_partition, row.kafka_offset = metadata.partition, metadata.offset
            _event_done(row, span, metadata)


def batch_start(*, producer: KafkaProducer | None, batch_size: int) -> InFlight | None:
    """Lease a batch (one statement) and hand its rows to the producer (no transaction), without
    waiting for their acknowledgements: batch_finish does. None if nothing was due.

    The producer is the one given, else the process's shared one.
    """
    lease = uuid.uuid4()
    lease_seconds = settings.OUTBOX_RELAY_LEASE_SECONDS
    # Read before the claim, so never later than the lease's end on the database's clock
    # (which alone decides it: no two clocks are compared). The margin is for the record.
    record_by = time.monotonic() + lease_seconds - min(RECORD_MARGIN_SECONDS, lease_seconds / 4)
    rows = claim(batch_size, lease)
    if not rows:
        # Heads may be leased although none of their rows may go now (dead, backing off).
        OutboxEvent.objects.filter(claimed_by=lease).update(claimed_by=None, claimed_until=None)
        return None
    batch = InFlight(lease=lease, record_by=record_by, tried=rows, failures={})
    try:
        # A producer built here (after a failure) spends lease time: _send_start sends only what fits.
        _send_start(producer or producer_get(), batch, rows)
    except KafkaError as exc:  # could not even build a producer: the broker is unreachable
        batch.failures.update({row.id: exc for row in rows})
    return batch


def batch_finish(batch: InFlight, *, producer: KafkaProducer | None, flush: bool = True) -> tuple[int, int]:
    """Wait for a started batch's acknowledgements and record its outcome (one UPDATE).

    Returns (published, failed).
    """
    if batch.futures:
        _send_finish(producer or producer_get(), batch, flush=flush)
    return outcome_record(batch.tried, batch.failures, batch.lease)


def relay_batch(*, producer: KafkaProducer | None, batch_size: int) -> tuple[int, int] | None:
    """Relay one batch alone: lease (one statement), send (no transaction), record (one UPDATE).

    Returns (published, failed), or None if nothing was due.
    """
    batch = batch_start(producer=producer, batch_size=batch_size)
    return None if batch is None else batch_finish(batch, producer=producer)


class _Recorder:
    """Records a run's batches on a thread and a database connection of their own, so a batch's
    outcome UPDATE runs while the relay claims and sends the next one (on two cores PostgreSQL
    runs both at once). Made only once a run has a backlog: a run of one batch records it
    inline, with no thread and no second connection. Its connection is opened for the run and
    closed with it: a failure on it ends the run, as one on the relay's own would."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-record")

    def record(self, batch: InFlight, producer: KafkaProducer | None) -> Future[tuple[int, int]]:
        """batch_finish(batch) on the recorder's thread, in the caller's context (its trace)."""
        context = contextvars.copy_context()
        return self._executor.submit(context.run, _finish_recorded, batch, producer)

    def close(self) -> None:
        try:
            self._executor.submit(connections.close_all).result()
        finally:
            self._executor.shutdown()


def _finish_recorded(batch: InFlight, producer: KafkaProducer | None) -> tuple[int, int]:
    # No flush: relay_run flushes if no batch follows (its records leave after linger_ms anyway).
    return batch_finish(batch, producer=producer, flush=False)


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
    # Two batches at a time: the next is claimed and sent while the last one's acknowledgements
    # are on their way, and, once the run has a backlog, while the last one is recorded (by
    # _Recorder). Per-key order holds: the batch in flight leases its keys' heads until its
    # record commits, and a later row of a key is never a head while an older row is
    # unpublished, so the next claim takes other keys only.
    in_flight: InFlight | None = None
    recorder: _Recorder | None = None
    claiming = True  # False once a batch got nothing through (broker down?): no more claims
    discard = False  # the shared producer failed: thrown away once no batch is in flight on it
    try:
        while True:
            recording = recorder.record(in_flight, producer) if recorder and in_flight else None
            started = None
            if claiming and not discard and time.monotonic() < deadline:
                started = batch_start(producer=producer, batch_size=batch_size)
            if in_flight is None and started is None:
                break  # nothing in flight, nothing due (a claim beside a batch in flight may find nothing: claim again)
            if in_flight is not None:
                if recording is not None:
                    if started is None:  # no batch follows: send the last one's records now, not after linger_ms
                        with suppress(KafkaError):  # a timeout shows in the recording, per row
                            (producer or producer_get()).flush(timeout=max(in_flight.record_by - time.monotonic(), 0.0))
                    published, failed = recording.result()
                else:
                    published, failed = batch_finish(in_flight, producer=producer, flush=started is None)
                    if started is not None:
                        recorder = _Recorder()  # a backlog: record the next batches beside the claims
                result.batches += 1
                result.published += published
                result.failed += failed
                if failed and producer is None:
                    discard = True
                if failed and not published:
                    claiming = False  # stop here instead of failing batch after batch
            in_flight = started
            if discard and in_flight is None:
                producer_discard()
                discard = False
    finally:
        if recorder is not None:
            recorder.close()
    if result.published or result.failed:
        logger.info(
            "Outbox relay: %d published, %d failed in %d batches", result.published, result.failed, result.batches
        )
    return result
