"""Kafka client settings and topic creation: the one home for both, used by the
outbox relay, the user-event consumer and `manage.py create_kafka_topics`.

Every timeout here is short on purpose: a broker that is down must make a relay
run fail within seconds and leave its rows pending, never hang a worker.
"""

import logging
from typing import Any

from django.conf import settings
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

logger = logging.getLogger(__name__)


def client_config() -> dict[str, Any]:
    # settings.KAFKA_REQUEST_TIMEOUT_MS (5 s): long enough for a healthy broker under load,
    # short enough that an outage is noticed by a relay run well inside its time budget.
    return {
        "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "request_timeout_ms": settings.KAFKA_REQUEST_TIMEOUT_MS,
        "bootstrap_timeout_ms": settings.KAFKA_REQUEST_TIMEOUT_MS,
        "reconnect_backoff_max_ms": 1_000,
    }


def delivery_timeout_seconds() -> float:
    """How long the producer keeps trying to deliver a record: after that no acknowledgement comes."""
    return settings.KAFKA_REQUEST_TIMEOUT_MS * 2 / 1000


def producer_new() -> KafkaProducer:
    """An idempotent, acks=all producer whose every wait is bounded."""
    return KafkaProducer(
        **client_config(),
        client_id="order-service-outbox",
        acks="all",
        linger_ms=5,
        max_block_ms=settings.KAFKA_REQUEST_TIMEOUT_MS,
        # request_timeout_ms + linger_ms must fit in delivery_timeout_ms.
        delivery_timeout_ms=round(delivery_timeout_seconds() * 1000),
    )


# The user topics are a replica's source: compacted, so the latest event per user
# (key) is kept for ever and a new replica can be rebuilt from their beginning.
# Order events and the dead-letter topic are a history with retention.
_USER_EVENT_TYPES = ("user.created", "user.updated", "user.deleted")


def topic_plan(*, partitions: int, replication_factor: int, min_insync_replicas: int) -> list[NewTopic]:
    """The topics this service needs (settings.KAFKA_TOPICS and the user-event DLQ), with their configs."""
    policies: dict[str, str] = {}
    for event_type, topic in settings.KAFKA_TOPICS.items():
        policies[topic] = "compact" if event_type in _USER_EVENT_TYPES else "delete"
    policies[settings.KAFKA_TOPIC_USER_EVENTS_DLQ] = "delete"
    return [
        NewTopic(
            topic,
            partitions,
            replication_factor,
            topic_configs={"cleanup.policy": policy, "min.insync.replicas": str(min_insync_replicas)},
        )
        for topic, policy in sorted(policies.items())
    ]


def topics_create(*, partitions: int, replication_factor: int, min_insync_replicas: int = 1) -> dict[str, str]:
    """Create every topic of topic_plan() that is missing. Returns topic -> "created"/"exists".

    An existing topic is left as it is (its configs are not changed here).
    """
    admin = KafkaAdminClient(**client_config(), client_id="order-service-admin")
    try:
        existing = set(admin.list_topics())
        result: dict[str, str] = {}
        plan = topic_plan(
            partitions=partitions, replication_factor=replication_factor, min_insync_replicas=min_insync_replicas
        )
        for topic in plan:
            if topic.name in existing:
                result[topic.name] = "exists"
                continue
            try:
                admin.create_topics([topic])
                result[topic.name] = "created"
            except TopicAlreadyExistsError:  # created by someone else meanwhile
                result[topic.name] = "exists"
        return result
    finally:
        admin.close()


def broker_ping(*, timeout_ms: int) -> None:
    """Raise KafkaError unless a broker answers within about `timeout_ms` (for readiness checks)."""
    admin = KafkaAdminClient(
        **{**client_config(), "request_timeout_ms": timeout_ms, "bootstrap_timeout_ms": timeout_ms},
        client_id="order-service-health",
    )
    try:
        admin.describe_cluster()
    finally:
        admin.close()
