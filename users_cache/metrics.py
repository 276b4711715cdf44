"""Metrics of the user-event consumer (manage.py consume_user_events, one process per pod).

Outcomes of every message handled (applied, stale, duplicate, replayed, bad), the
redeliveries among them, and how many messages wait behind the consumer's position.
"""

from functools import cache
from typing import Any

from prometheus_client import Counter, Gauge

from users_cache.status import consumer_lag_by_topic

events_consumed = Counter(
    "kafka_events_consumed_total",
    "User events handled by the consumer, by topic and outcome (applied, stale, duplicate, replayed, bad)",
    ["topic", "result"],
)
events_duplicate = Counter(
    "kafka_events_duplicate_total",
    "User events already processed before (a redelivery): dropped without effect",
    ["topic"],
)
consumer_lag = Gauge(
    "kafka_consumer_lag_messages",
    "Messages published to the user topics that this consumer has not read yet (its assigned partitions)",
    ["topic"],
    multiprocess_mode="livesum",
)


def event_consumed_count(*, topic: str, result: str) -> None:
    _consumed(topic, result).inc()
    if result == "duplicate":
        events_duplicate.labels(topic=topic).inc()


@cache
def _consumed(topic: str, result: str) -> Any:
    """The labelled child, looked up once: labels() takes the metric's lock and builds the
    label tuple on every call, once per message otherwise. (Topics and results are few.)"""
    return events_consumed.labels(topic=topic, result=result)


def consumer_lag_observe(consumer: Any, topics: list[str]) -> None:
    """Set the lag per topic from what the last fetches told (highwater) and the read positions.

    Every topic is set, to 0 when none of its partitions is assigned here: after a
    rebalance a topic's lag moves to the member that took its partitions.
    """
    lag = consumer_lag_by_topic(consumer)
    for topic in topics:
        consumer_lag.labels(topic=topic).set(lag.get(topic, 0))
