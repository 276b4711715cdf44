"""One Kafka producer per process, reused across relay runs.

Opening a producer costs a bootstrap round trip and an idempotent-producer id,
so runs share one. After any Kafka error it is thrown away and the next run
builds a fresh one: a kafka-python idempotent producer stays broken after a
broker restart, and telling which errors leave it usable is not worth the risk.
"""

import logging
import threading

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from orders_project.kafka import producer_new

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 5

_lock = threading.Lock()
_producer: KafkaProducer | None = None


def producer_get() -> KafkaProducer:
    """The process's producer, created on first use. Raises KafkaError if the broker is unreachable."""
    global _producer
    with _lock:
        if _producer is None:
            _producer = producer_new()
            logger.info("Kafka producer created")
        return _producer


def producer_discard() -> None:
    """Close and forget the process's producer; the next producer_get() makes a new one."""
    global _producer
    with _lock:
        producer, _producer = _producer, None
    if producer is not None:
        try:
            _close(producer)
        except Exception:  # a broken producer may fail to close; it is being dropped anyway
            logger.warning("Kafka producer did not close cleanly", exc_info=True)


def _close(producer: KafkaProducer) -> None:
    try:
        producer.close(timeout=CLOSE_TIMEOUT_SECONDS)
    except KafkaTimeoutError:
        # Records still in flight to a stalled broker: kafka-python's close() raises from its
        # flush and never reaches its own force close, so the sender thread would live on and
        # could deliver them later, after the relay recorded their rows as failed (a late
        # duplicate of the retry), and the producer's __del__ would try to close it again.
        # Their rows are pending again already: end the thread, dropping its records, as
        # close() does once its timeout is over, then close what is left.
        producer._sender.force_close()
        producer._sender.join(CLOSE_TIMEOUT_SECONDS)
        producer.close(timeout=0)
