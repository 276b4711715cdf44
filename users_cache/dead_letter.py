"""Copies of bad user events to the dead-letter topic, the reason and the source in headers."""

import logging

from django.conf import settings
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from orders_project.kafka import producer_new

logger = logging.getLogger("users_cache.consumer")  # the consumer's lines, as before the split

DLQ_SEND_TIMEOUT_SECONDS = 10.0


class DeadLetters:
    """One producer, made on the first bad message (most runs never need one)."""

    def __init__(self) -> None:
        self._producer: KafkaProducer | None = None

    def send(self, record: ConsumerRecord, reason: str) -> None:
        """Copy `record` and wait for the acknowledgement. Raises KafkaError (the caller retries)."""
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

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
