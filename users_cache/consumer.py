"""The long-running loop behind `manage.py consume_user_events`.

Offsets are committed only after every message up to them has had its effect
stored (Redis, orders) or has been copied to the dead-letter topic. An outage
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

from django.conf import settings
from django.db import DatabaseError, DataError, close_old_connections
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError

from orders_project import tracing
from orders_project.heartbeat import heartbeat_touch
from orders_project.kafka import client_config, producer_new
from users_cache.handlers import Outcome, message_handle
from users_cache.metrics import consumer_lag_observe, event_consumed_count
from users_cache.rebuild import RebuildProgress
from users_cache.status import ConsumerStatusReporter, consumer_lag

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 10.0
RETRY_BACKOFF_MAX_SECONDS = 10.0
DLQ_SEND_TIMEOUT_SECONDS = 10.0


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


class UserEventConsumer:
    def __init__(
        self,
        *,
        group_id: str | None = None,
        stop: threading.Event | None = None,
        session_timeout_ms: int = 10_000,
        max_poll_records: int = 500,
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
        self.rebuild = rebuild
        self.until_caught_up = until_caught_up
        self.progress_seconds = progress_seconds
        self.report = report or logger.info
        self.progress = RebuildProgress(self.topics) if rebuild else None
        self.stats = ConsumerStats()
        self._producer: KafkaProducer | None = None
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
                batch = consumer.poll(timeout_ms=1000)
                processed = self._process(batch)
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
            if self._producer is not None:
                self._producer.close(timeout=5)
            logger.info("Consumer stopped: %s", self.stats.counts)
        return self.stats

    def _process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Handle the batch in order; returns the offsets that are safe to commit."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for partition, records in batch.items():
            for record in records:
                if not self._handle_until_done(record):
                    return offsets  # told to stop mid-outage: commit only what is done
                offsets[partition] = OffsetAndMetadata(record.offset + 1, "", -1)
        return offsets

    def _handle_until_done(self, record: ConsumerRecord) -> bool:
        """Handle one message in a CONSUMER span, child of the traceparent in its headers
        (the user service's trace goes on here, and into the cancels a deletion causes)."""
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
            return self._handle_until_done_traced(record)

    def _handle_until_done_traced(self, record: ConsumerRecord) -> bool:
        delay = 0.5
        while True:
            try:
                outcome = self._outcome(record)
                if outcome.result == "bad":
                    self._dead_letter(record, outcome.reason)
                self.stats.add(outcome)
                event_consumed_count(topic=record.topic, result=outcome.result)
                # One line per message; a rebuild reads whole topics, its progress lines say enough.
                logger.log(
                    logging.DEBUG if self.rebuild else logging.INFO,
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
                logger.warning(
                    "Cannot apply %s[%d]@%d yet (%r); retrying in %.1fs",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                    delay,
                )
                close_old_connections()
                heartbeat_touch()  # waiting out an outage is alive, not stuck
                if self.stop.wait(delay):
                    return False
                delay = min(delay * 2, RETRY_BACKOFF_MAX_SECONDS)

    def _outcome(self, record: ConsumerRecord) -> Outcome:
        """message_handle, with content-caused failures turned into "bad" (dead-lettered).

        Outages (RedisError, any other DatabaseError, KafkaError) propagate and
        are retried. DataError is PostgreSQL refusing a value of this message, and
        an unexpected exception would be raised again by every redelivery: either
        way retrying is a crash loop, so the message goes to the dead-letter topic.
        """
        try:
            return message_handle(topic=record.topic, value=record.value, replay=self.rebuild)
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

    def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        logger.error(
            "Bad message at %s[%d]@%d: %s; copied to %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            settings.KAFKA_TOPIC_USER_EVENTS_DLQ,
        )
        if self._producer is None:
            self._producer = producer_new()
        headers = [
            # A reason may quote the bad content: never fail on encoding it.
            ("dlq_reason", reason.encode("utf-8", "backslashreplace")),
            ("source_topic", record.topic.encode()),
            ("source_partition", str(record.partition).encode()),
            ("source_offset", str(record.offset).encode()),
        ]
        try:
            self._producer.send(
                settings.KAFKA_TOPIC_USER_EVENTS_DLQ, key=record.key, value=record.value, headers=headers
            ).get(timeout=DLQ_SEND_TIMEOUT_SECONDS)
        except KafkaError:
            self._producer.close(timeout=1)  # an idempotent producer can stay broken: start afresh
            self._producer = None
            raise

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
