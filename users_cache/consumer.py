"""The long-running loop behind `manage.py consume_user_events`.

Offsets are committed only after every message up to them has had its effect
stored (Redis, orders) or has been copied to the dead-letter topic.

What a message does is decided from that message alone (handlers.message_parse,
handlers.event_command); a poll's messages are then done together: their Redis
applies, a delete's tombstone among them, as one pipeline (store.events_apply:
the same outcomes as one call each, in order, for one round trip instead of one
per message), the deleted users' open orders found by one pair of statements,
then each message recorded in order, a delete after cancelling its user's
orders and marking itself processed (see UserEventConsumer.handle_poll). An outage
of Redis or PostgreSQL stops progress, never skips: the same message is
retried with backoff until it goes through or the consumer is told to stop.
A message whose content fails (the contract, or an error that only its content
can cause) goes to the dead-letter topic: retrying it would fail forever.

A rebuild (`rebuild=True`) reads the topics from the beginning in a new group,
applies already-processed events again (see store.event_apply `replay`), logs
progress, and with `until_caught_up` stops once it has read what was published
before it began.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, DataError, close_old_connections
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError

from orders.services import orders_open_of_deleted_users
from orders_project import tracing
from orders_project.heartbeat import heartbeat_touch
from orders_project.kafka import client_config
from users_cache.dead_letter import DeadLetters
from users_cache.events import UserEvent
from users_cache.handlers import Outcome, delete_finish, delete_is_done, event_command, event_handle, message_parse
from users_cache.metrics import consumer_lag_observe, event_consumed_count
from users_cache.rebuild import RebuildProgress
from users_cache.status import ConsumerStatusReporter, consumer_lag
from users_cache.store import events_apply

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 10.0
RETRY_BACKOFF_MAX_SECONDS = 10.0

T = TypeVar("T")
# A message of the poll with what its content asks for: an event to apply, or its final outcome (bad).
Parsed = tuple[ConsumerRecord, UserEvent | Outcome]


@dataclass
class ConsumerStats:
    counts: dict[str, int] = field(default_factory=dict)
    cancelled_orders: int = 0

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.result] = self.counts.get(outcome.result, 0) + 1
        self.cancelled_orders += outcome.cancelled_orders

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _known(outcome: Outcome) -> Outcome:
    """The handling of a message whose effect is stored already (applied in a pipeline, or bad)."""
    return outcome


def _from(queued: list[Parsed]) -> str:
    """Where a queue starts, for log lines."""
    first = queued[0][0]
    return f"from {first.topic}[{first.partition}]@{first.offset} on"


def _done(offsets: dict[TopicPartition, OffsetAndMetadata], record: ConsumerRecord) -> None:
    offsets[TopicPartition(record.topic, record.partition)] = OffsetAndMetadata(record.offset + 1, "", -1)


class UserEventConsumer:
    def __init__(
        self,
        *,
        group_id: str | None = None,
        stop: threading.Event | None = None,
        session_timeout_ms: int = 10_000,
        max_poll_records: int = 500,
        poll_timeout_ms: int = 1000,
        rebuild: bool = False,
        until_caught_up: bool = False,
        progress_seconds: float = PROGRESS_INTERVAL_SECONDS,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.group_id = group_id or settings.KAFKA_CONSUMER_GROUP_ID
        self.stop = stop or threading.Event()
        self.topics = [settings.KAFKA_TOPICS[name] for name in ("user.created", "user.updated", "user.deleted")]
        self.session_timeout_ms = session_timeout_ms
        self.max_poll_records = max_poll_records
        # How long a poll waits for records, and so how long a stop may wait for the poll.
        self.poll_timeout_ms = poll_timeout_ms
        self.rebuild = rebuild
        self.until_caught_up = until_caught_up
        self.progress_seconds = progress_seconds
        self.report = report or logger.info
        self.progress = RebuildProgress(self.topics) if rebuild else None
        self.stats = ConsumerStats()
        self.dead_letters = DeadLetters()
        self.status = ConsumerStatusReporter(group_id=self.group_id)  # lag and last event, for the web

    def run(self) -> ConsumerStats:
        consumer = KafkaConsumer(
            *self.topics,
            **client_config(),
            group_id=self.group_id,
            client_id="order-service-user-events",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 3, 100),
            max_poll_records=self.max_poll_records,
        )
        logger.info("Consuming %s as group %s", ", ".join(self.topics), self.group_id)
        last_report, reported_total = time.monotonic(), 0
        try:
            while not self.stop.is_set():
                heartbeat_touch()
                try:
                    batch = consumer.poll(timeout_ms=self.poll_timeout_ms)
                except KafkaError as exc:
                    # kafka-python raises from poll when a metadata refresh finds the broker
                    # unreachable (make chaos's Kafka cut, once in five runs): nothing was
                    # handled, so poll again after a pause instead of exiting.
                    logger.warning("Kafka unreachable while polling (%s); polling again", exc)
                    self.stop.wait(1.0)
                    continue
                processed = self.handle_poll(batch)
                self._commit(consumer, processed)
                self.status.observe(consumer, batch)
                consumer_lag_observe(consumer, self.topics)
                if self.progress is not None and self._rebuild_step(consumer, last_report):
                    break
                if time.monotonic() - last_report >= self.progress_seconds:
                    self._report(consumer, self.stats.total - reported_total, time.monotonic() - last_report)
                    last_report, reported_total = time.monotonic(), self.stats.total
        finally:
            consumer.close()
            self.status.withdraw()  # stopped: the web says so now, not after a minute of silence
            self.dead_letters.close()
            logger.info("Consumer stopped: %s", self.stats.counts)
        return self.stats

    def handle_poll(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Handle one poll's messages in order; returns the offsets that are safe to commit.
        (Needs no broker unless a message is dead-lettered: tests give it records.)

        The messages are queued in the poll's order and done together by _flush:
        the Redis applies (a delete's tombstone among them) as one pipeline, the
        deletes' lookups of open orders in one pair of statements, then each
        message's outcome recorded in order (a delete cancelling its user's
        orders and marking itself processed first). A delete of a user who
        already has a delete queued flushes the queue first: a delete is marked
        processed only after its cancels, so an exact resend in the same flush
        would not be recognised. A message counts as done, and its offset as
        safe, once its outcome is recorded, after its effect is stored; a
        partition's offset only moves over messages that are all done.
        """
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        queued: list[Parsed] = []
        deleted_users: set[str] = set()
        for records in batch.values():
            for record in records:
                parsed = self._guarded(record, partial(message_parse, topic=record.topic, value=record.value))
                if isinstance(parsed, UserEvent) and parsed.kind == "deleted":
                    if parsed.user_id in deleted_users:
                        if not self._flush(queued, offsets):
                            return offsets  # told to stop mid-outage: commit only what is done
                        queued, deleted_users = [], set()
                    deleted_users.add(parsed.user_id)
                queued.append((record, parsed))
        self._flush(queued, offsets)
        return offsets

    def _flush(self, queued: list[Parsed], offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        """Apply the queued events in one pipeline, find the open orders of the users deleted,
        then record each queued message's outcome in order and mark it done in `offsets`.
        False when told to stop first."""
        events = [parsed for _, parsed in queued if isinstance(parsed, UserEvent)]
        results = self._apply_until_done(queued, events)
        if results is None:
            return False
        tombstoned = [
            event.user_id
            for event, result in zip(events, results, strict=True)
            if event.kind == "deleted" and result is not None and not delete_is_done(result)
        ]
        try:
            open_orders = self._open_orders_until_done(queued, tombstoned)
        except Exception:  # not an outage (those are waited out): the deletes one by one, as below
            logger.exception("Unexpected error finding the open orders of %d deleted users", len(tombstoned))
            open_orders = {}
            results = [
                None if event.kind == "deleted" else result for event, result in zip(events, results, strict=True)
            ]
        if open_orders is None:
            return False
        applied = iter(zip(events, results, strict=True))
        for record, parsed in queued:
            if isinstance(parsed, Outcome):
                handle = partial(_known, parsed)
            else:
                event, result = next(applied)
                if result is None:  # the pipeline or the lookup failed on something else than an outage
                    handle = partial(event_handle, event, replay=self.rebuild)
                elif event.kind == "deleted" and not delete_is_done(result):
                    handle = partial(delete_finish, event, result, open_orders.get(event.user_id, []))
                else:
                    handle = partial(_known, Outcome(result, event_id=event.event_id))
            if not self._handle_until_done(record, handle):
                return False
            _done(offsets, record)
        return True

    def _apply_until_done(self, queued: list[Parsed], events: list[UserEvent]) -> list[str | None] | None:
        """The outcomes of applying `events` in one pipeline, retried through an outage as a single
        message is (a redo is safe: store.events_apply); None when told to stop first. On an
        unexpected error, a list of None: the caller applies them one by one, so the one message
        that causes it is dead-lettered rather than the whole poll retried forever."""
        if not events:
            return []
        delay = 0.5
        while True:
            try:
                return list(events_apply([event_command(event, replay=self.rebuild) for event in events]))
            except RedisError as exc:
                if not self._wait_out(f"{len(events)} events {_from(queued)}", exc, delay):
                    return None
                delay = min(delay * 2, RETRY_BACKOFF_MAX_SECONDS)
            except Exception:
                logger.exception("Unexpected error applying %d events together; applying them one by one", len(events))
                return [None] * len(events)

    def _open_orders_until_done(self, queued: list[Parsed], user_ids: list[str]) -> dict[str, list[UUID]] | None:
        """The open orders of the users whose tombstones the pipeline stored, retried through an
        outage; None when told to stop first. Anything else (a DataError: a value PostgreSQL
        refuses) is raised: the caller handles the deletes one by one, so the one message that
        causes it is dead-lettered (their tombstones are written again, which is safe)."""
        if not user_ids:
            return {}
        delay = 0.5
        while True:
            try:
                return orders_open_of_deleted_users(user_ids=user_ids)
            except DataError:
                raise
            except DatabaseError as exc:
                if not self._wait_out(f"the open orders of {len(user_ids)} deleted users {_from(queued)}", exc, delay):
                    return None
                delay = min(delay * 2, RETRY_BACKOFF_MAX_SECONDS)

    def _wait_out(self, what: str, exc: Exception, delay: float) -> bool:
        """Log an outage and wait `delay` before the next attempt; False when told to stop meanwhile."""
        logger.warning("Cannot apply %s yet (%r); retrying in %.1fs", what, exc, delay)
        close_old_connections()
        heartbeat_touch()  # waiting out an outage is alive, not stuck
        return not self.stop.wait(delay)

    def _handle_until_done(self, record: ConsumerRecord, handle: Callable[[], Outcome]) -> bool:
        """Handle one message and record its outcome, in a CONSUMER span, child of the traceparent
        in its headers (the user service's trace goes on here, and into the cancels a deletion
        causes). For a message applied in a pipeline, `handle` only returns its outcome: the span
        covers the recording, the Redis work is shared by the poll."""
        traceparent = next((value.decode("latin-1") for name, value in record.headers if name == "traceparent"), None)
        attributes = {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        }
        with tracing.span(
            f"{record.topic} process", traceparent=traceparent, kind=SpanKind.CONSUMER, attributes=attributes
        ):
            return self._handle_until_done_traced(record, handle)

    def _handle_until_done_traced(self, record: ConsumerRecord, handle: Callable[[], Outcome]) -> bool:
        delay = 0.5
        while True:
            try:
                outcome = self._guarded(record, handle)
                if outcome.result == "bad":
                    self.dead_letters.send(record, outcome.reason)
                self.stats.add(outcome)
                event_consumed_count(topic=record.topic, result=outcome.result)
                # One line per message at DEBUG: at INFO, as deployed, the line cost the consumer more
                # CPU than the rest of its work (132-140 against 50-55 us per event; docs/performance.md).
                # A bad message has its ERROR line from the dead-letter copy; the progress line every
                # PROGRESS_INTERVAL_SECONDS counts the rest.
                logger.debug(
                    "User event %s from %s[%d]@%d: %s",
                    outcome.event_id or "-",
                    record.topic,
                    record.partition,
                    record.offset,
                    outcome.result,
                    extra={"event_id": outcome.event_id or None},
                )
                return True
            except (RedisError, DatabaseError, KafkaError) as exc:
                if not self._wait_out(f"{record.topic}[{record.partition}]@{record.offset}", exc, delay):
                    return False
                delay = min(delay * 2, RETRY_BACKOFF_MAX_SECONDS)

    def _guarded(self, record: ConsumerRecord, call: Callable[[], T]) -> T | Outcome:
        """`call` (a message's parse or handling), with content-caused failures turned into "bad"
        (dead-lettered).

        Outages (RedisError, any other DatabaseError, KafkaError) propagate and
        are retried. DataError is PostgreSQL refusing a value of this message, and
        an unexpected exception would be raised again by every redelivery: either
        way retrying is a crash loop, so the message goes to the dead-letter topic.
        """
        try:
            return call()
        except DataError as exc:
            return Outcome("bad", reason=f"refused by the database: {exc}"[:500])
        except (RedisError, DatabaseError, KafkaError):
            raise
        except Exception as exc:
            logger.exception("Unexpected error on %s[%d]@%d", record.topic, record.partition, record.offset)
            return Outcome("bad", reason=f"unexpected error: {exc!r}"[:500])

    def _rebuild_step(self, consumer: KafkaConsumer, last_report: float) -> bool:
        """Track a rebuild; True when it is caught up and should stop."""
        assert self.progress is not None
        self.progress.handled = self.stats.total
        self.progress.observe(consumer)
        caught_up = self.progress.caught_up(consumer)
        if caught_up or time.monotonic() - last_report >= self.progress_seconds:
            self.report(self.progress.line(consumer))
        if not caught_up:
            return False
        if self.until_caught_up:
            self.report(f"rebuild: caught up after {self.stats.total} messages; stopping")
            return True
        self.report(f"rebuild: caught up after {self.stats.total} messages; consuming on as group {self.group_id}")
        self.progress = None
        return False

    def _commit(self, consumer: KafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if not offsets:
            return
        try:
            consumer.commit(offsets)
        except KafkaError as exc:
            # Effects are stored and idempotent: the messages come again and change nothing.
            logger.warning("Offset commit failed (%r); those messages will be redelivered", exc)

    def _report(self, consumer: KafkaConsumer, count: int, seconds: float) -> None:
        lag = consumer_lag(consumer)
        if not count and not lag:
            return  # idle and caught up: nothing worth a line
        logger.info(
            "%d messages in %.0fs (%.1f/s), lag %d, totals %s", count, seconds, count / seconds, lag, self.stats.counts
        )
