"""manage.py create_kafka_topics: the seven topics, created once, with the partitions asked for."""

import io

import pytest
from django.core.management import CommandError, call_command
from kafka import KafkaConsumer

pytestmark = pytest.mark.kafka


def _run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("create_kafka_topics", *args, stdout=out)
    return out.getvalue().splitlines()


def test_create_kafka_topics_creates_the_seven_topics_then_finds_them_existing(kafka_bootstrap, unique_topics):
    names = sorted(unique_topics.values())
    assert len(names) == 7

    # when it runs twice
    first = _run("--partitions", "2")
    second = _run("--partitions", "2")

    # then the first run created all seven and the second found all seven
    assert first == [f"{name}: created" for name in names]
    assert second == [f"{name}: exists" for name in names]
    # and each has the partitions asked for
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    try:
        assert {name: len(consumer.partitions_for_topic(name) or ()) for name in names} == dict.fromkeys(names, 2)
    finally:
        consumer.close()


def test_create_kafka_topics_names_the_broker_it_cannot_reach(settings, unique_topics):
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]

    with pytest.raises(CommandError, match=r"Kafka at \['127\.0\.0\.1:1'\] is not reachable"):
        _run()
