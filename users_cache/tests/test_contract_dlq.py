"""A user event that only the schema refuses goes to the dead-letter topic with the schema's reason."""

import json
from typing import Any

import redis
from django.conf import settings as django_settings

from tests.support.users import at, created, read_topic, user_event, user_hash


def test_an_event_the_schema_refuses_is_dead_lettered_with_the_schema_reason(
    kafka_bootstrap: str, user_topics: dict[str, str], send: Any, start_consumer: Any, redis_db: redis.Redis
) -> None:
    # given a known user
    consumer = start_consumer()
    send(("user.created", created("u1", at(0))))
    consumer.wait_total(1)

    # when an update of a contract version this service does not know arrives, then a good one
    unknown_version = json.loads(user_event("user.updated", "u1", at(10), name="From the future"))
    unknown_version["version"] = "2.0"
    send(
        ("user.updated", json.dumps(unknown_version).encode()),
        ("user.updated", user_event("user.updated", "u1", at(20), name="Good")),
        key=b"u1",
    )
    consumer.wait_total(3)
    consumer.stop()

    # then the first is dead-lettered with the schema's reason, unchanged, and the second applied
    assert consumer.counts == {"applied": 2, "bad": 1}
    assert user_hash(redis_db, "u1")["name"] == "Good"
    source = user_topics["user.updated"].encode()
    records = read_topic(
        kafka_bootstrap,
        django_settings.KAFKA_TOPIC_USER_EVENTS_DLQ,
        lambda found: any(dict(r.headers).get("source_topic") == source for r in found),
    )
    (dead,) = [r for r in records if dict(r.headers).get("source_topic") == source]
    assert dict(dead.headers)["dlq_reason"] == b"schema: version: '1.0' was expected"
    assert json.loads(dead.value) == unknown_version
