"""manage.py create_kafka_topics: the nine topics (order, order.voided, user, user-event DLQ), created once,
with the partitions asked for and each its cleanup policy."""

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType

from orders_project.kafka import topic_plan

pytestmark = pytest.mark.kafka

USER_EVENT_TYPES = ("user.created", "user.updated", "user.deleted")


def _run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("create_kafka_topics", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def dlq_topic(settings: Any, unique_topics: dict[str, str]) -> str:
    settings.KAFKA_TOPIC_USER_EVENTS_DLQ = f"{unique_topics['user.created']}.dlq"
    return str(settings.KAFKA_TOPIC_USER_EVENTS_DLQ)


def test_create_kafka_topics_creates_the_nine_topics_then_finds_them_existing(
    kafka_bootstrap: str, unique_topics: dict[str, str], dlq_topic: str
) -> None:
    policies = {name: "compact" if kind in USER_EVENT_TYPES else "delete" for kind, name in unique_topics.items()}
    policies[dlq_topic] = "delete"
    names = sorted(policies)
    assert len(names) == 9

    # when it runs twice
    first = _run("--partitions", "2")
    second = _run("--partitions", "2")

    # then the first run created all nine, the user topics compacted, and the second found them
    assert first == [f"{name}: created (cleanup.policy={policies[name]})" for name in names]
    assert second == [f"{name}: exists (cleanup.policy={policies[name]})" for name in names]
    # and each has the partitions asked for
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    try:
        assert {name: len(consumer.partitions_for_topic(name) or ()) for name in names} == dict.fromkeys(names, 2)
    finally:
        consumer.close()


def test_topic_plan_compacts_the_user_topics_and_sets_min_insync_replicas(
    unique_topics: dict[str, str], dlq_topic: str
) -> None:
    plan = topic_plan(partitions=6, replication_factor=3, min_insync_replicas=2)

    assert [(t.name, t.num_partitions, t.replication_factor, t.topic_configs) for t in plan] == [
        (
            name,
            6,
            3,
            {
                "cleanup.policy": "compact" if name in {unique_topics[k] for k in USER_EVENT_TYPES} else "delete",
                "min.insync.replicas": "2",
            },
        )
        for name in sorted([*unique_topics.values(), dlq_topic])
    ]


def test_tansu_accepts_the_topic_configs_but_does_not_report_them(
    kafka_bootstrap: str, unique_topics: dict[str, str], dlq_topic: str
) -> None:
    # Tansu 0.6 (the test broker) takes CreateTopics with configs and replication 3 on one
    # broker without an error, and DescribeConfigs answers with no entries: the policy can
    # only be checked on a real Kafka (docs/architecture.md says so). This pins what Tansu does,
    # so a Tansu that starts to report configs makes this test say so.
    _run("--replication-factor", "3", "--min-insync-replicas", "2")

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, unique_topics["user.created"])])
    finally:
        admin.close()

    assert described == {"topic": {unique_topics["user.created"]: {}}}


def test_create_kafka_topics_refuses_more_insync_replicas_than_copies(unique_topics: dict[str, str]) -> None:
    with pytest.raises(CommandError, match=r"--min-insync-replicas \(2\) cannot exceed --replication-factor \(1\)"):
        _run("--replication-factor", "1", "--min-insync-replicas", "2")


def test_create_kafka_topics_names_the_broker_it_cannot_reach(settings: Any, unique_topics: dict[str, str]) -> None:
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]

    with pytest.raises(CommandError, match=r"Kafka at \['127\.0\.0\.1:1'\] is not reachable"):
        _run()
