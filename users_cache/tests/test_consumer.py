"""UserEventConsumer against the real broker, Redis and PostgreSQL, run in a thread.

Each test has its own topics and consumer groups (see conftest.py). Waits are
conditions with a deadline; nothing sleeps to synchronise.
"""

import datetime as dt
import logging
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from orders.models import Order, OrderStatus
from orders.tests.factories import OrderFactory
from outbox.models import OutboxEvent
from tests.support.users import (
    at,
    committed,
    created,
    read_topic,
    user_event,
    user_hash,
    users_snapshot,
    users_unreachable,
)
from tests.support.waiting import wait_for
from users_cache import consumer as consumer_module
from users_cache.generator import GeneratorShares, user_events_generate

pytestmark = pytest.mark.kafka


def test_duplicates_give_one_effect(send: Any, start_consumer: Any, redis_db: redis.Redis) -> None:
    update = user_event("user.updated", "u1", at(10), name="Renamed")
    consumer = start_consumer()
    send(("user.created", created("u1", at(0))))
    consumer.wait_total(1)
    send(("user.updated", update), ("user.updated", update))
    consumer.wait_total(3)
    consumer.stop()

    assert consumer.counts == {"applied": 2, "duplicate": 1}
    assert user_hash(redis_db, "u1")["name"] == "Renamed"


def test_out_of_order_update_is_ignored_and_partial_update_merges(
    send: Any, start_consumer: Any, redis_db: redis.Redis
) -> None:
    consumer = start_consumer()
    # Topics are not ordered with each other: the create goes first, and is applied, on its own.
    send(("user.created", created("u1", at(0))))
    consumer.wait_total(1)
    send(
        ("user.updated", user_event("user.updated", "u1", at(20), name="Newest")),
        ("user.updated", user_event("user.updated", "u1", at(10), name="Older", status="inactive")),
        ("user.updated", user_event("user.updated", "u1", at(30), email="new@example.com")),
    )
    consumer.wait_total(4)
    consumer.stop()

    assert consumer.counts == {"applied": 3, "stale": 1}
    stored = user_hash(redis_db, "u1")
    # The older update changed nothing; the email-only update kept name and status.
    assert (stored["name"], stored["status"], stored["email"]) == ("Newest", "active", "new@example.com")


def test_replaying_the_whole_topic_leaves_redis_byte_for_byte_the_same(
    send: Any, start_consumer: Any, redis_db: redis.Redis
) -> None:
    shares = GeneratorShares(updates=0.4, deletes=0.0, duplicates=0.1, out_of_order=0.3, malformed=0.05)
    messages = list(user_events_generate(count=300, shares=shares, seed=5, start=at(0)))
    send(*[(message.event_type, message.value) for message in messages])
    first = start_consumer()
    first.wait_total(len(messages))
    first.stop()
    before = users_snapshot(redis_db)
    assert sum(1 for key in before if key.startswith(b"users:user:")) > 50

    second = start_consumer()  # a new group: it reads both topics from the start
    second.wait_total(len(messages))
    second.stop()

    assert users_snapshot(redis_db) == before
    assert set(second.counts) <= {"duplicate", "bad"}
    assert second.counts.get("bad", 0) == first.counts.get("bad", 0)


def test_poison_message_goes_to_the_dead_letter_topic_and_the_next_is_applied(
    kafka_bootstrap: str, user_topics: dict[str, str], send: Any, start_consumer: Any, redis_db: redis.Redis
) -> None:
    consumer = start_consumer()
    send(("user.created", created("u1", at(0))))
    consumer.wait_total(1)
    send(
        ("user.updated", b"{not json"),
        ("user.updated", user_event("user.updated", "u1", at(10), name="After poison")),
        key=b"u1",
    )
    consumer.wait_total(3)

    assert consumer.counts == {"applied": 2, "bad": 1}
    assert user_hash(redis_db, "u1")["name"] == "After poison"
    wait_for(lambda: committed(kafka_bootstrap, consumer.group_id, user_topics["user.updated"]) == 2, "commit")
    consumer.stop()
    source = user_topics["user.updated"]
    records = read_topic(
        kafka_bootstrap,
        django_settings.KAFKA_TOPIC_USER_EVENTS_DLQ,
        lambda found: any(dict(r.headers).get("source_topic") == source.encode() for r in found),
    )
    (dead,) = [r for r in records if dict(r.headers).get("source_topic") == source.encode()]
    assert (dead.key, dead.value) == (b"u1", b"{not json")
    assert dict(dead.headers) == {
        "dlq_reason": b"not JSON",
        "source_topic": source.encode(),
        "source_partition": b"0",
        "source_offset": b"0",
    }


@pytest.mark.django_db(transaction=True)
def test_user_deleted_cancels_exactly_the_users_pending_and_confirmed_orders(
    send: Any, start_consumer: Any, redis_db: redis.Redis
) -> None:
    pending = OrderFactory.create(user_id="gone", status=OrderStatus.PENDING)
    confirmed = OrderFactory.create(user_id="gone", status=OrderStatus.CONFIRMED)
    untouched = [
        OrderFactory.create(user_id="gone", status=OrderStatus.SHIPPED),
        OrderFactory.create(user_id="gone", status=OrderStatus.CANCELLED),
        OrderFactory.create(user_id="stays", status=OrderStatus.PENDING),
        OrderFactory.create(user_id="stays", status=OrderStatus.CONFIRMED),
    ]
    before = {order.pk: (order.status, order.version) for order in untouched}
    deleted = user_event("user.deleted", "gone", at(50), reason="account_closed")
    consumer = start_consumer()
    send(("user.created", created("gone", at(0))))
    consumer.wait_total(1)
    send(("user.deleted", deleted), ("user.deleted", deleted))
    consumer.wait_total(3)
    consumer.stop()

    assert consumer.counts == {"applied": 2, "duplicate": 1}
    assert consumer.consumer.stats.cancelled_orders == 2
    cancelled = OutboxEvent.objects.filter(event_type="order.cancelled").order_by("id")
    assert sorted((e.payload["data"]["order_id"], e.payload["data"]["reason"]) for e in cancelled) == sorted(
        [(str(pending.pk), "user_deleted"), (str(confirmed.pk), "user_deleted")]
    )
    assert set(Order.objects.filter(pk__in=[pending.pk, confirmed.pk]).values_list("status", flat=True)) == {
        OrderStatus.CANCELLED
    }
    assert {o.pk: (o.status, o.version) for o in Order.objects.filter(pk__in=before)} == before
    assert user_hash(redis_db, "gone")["status"] == "deleted"


def test_redis_unreachable_makes_the_consumer_retry_without_committing(
    kafka_bootstrap: str,
    user_topics: dict[str, str],
    send: Any,
    start_consumer: Any,
    redis_db: redis.Redis,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reachable = settings.CACHES
    # A real closed port: every Redis call is refused, as in an outage.
    settings.CACHES = users_unreachable(reachable)
    caplog.set_level(logging.WARNING, logger="users_cache.consumer")
    send(("user.created", created("u1", at(0))))
    consumer = start_consumer()
    wait_for(lambda: sum("Cannot apply" in r.getMessage() for r in caplog.records) >= 2, "two failed attempts")

    assert consumer.consumer.stats.total == 0
    assert committed(kafka_bootstrap, consumer.group_id, user_topics["user.created"]) is None
    assert list(redis_db.scan_iter(match="users:*")) == []

    settings.CACHES = reachable  # Redis is back: the same message goes through
    consumer.wait_total(1)
    wait_for(lambda: committed(kafka_bootstrap, consumer.group_id, user_topics["user.created"]) == 1, "commit")
    consumer.stop()
    assert consumer.counts == {"applied": 1}
    assert user_hash(redis_db, "u1")["name"] == "Name u1"


# A JSON lone surrogate: valid JSON, but a Python string that no codec can encode.
SURROGATE_UPDATE = (
    b'{"event_id": "0b6f7f3e-8a52-4c1e-9d7a-2f4f0d3c9e10", "event_type": "user.updated", '
    b'"timestamp": "2026-11-01T12:00:10Z", "version": "1.0", "data": {"user_id": "u1", "name": "\\ud800"}}'
)


def test_bad_content_is_dead_lettered_with_its_reason_and_the_consumer_moves_on(
    kafka_bootstrap: str, user_topics: dict[str, str], send: Any, start_consumer: Any, redis_db: redis.Redis
) -> None:
    # given a known user
    consumer = start_consumer()
    send(("user.created", created("u1", at(0))))
    consumer.wait_total(1)

    # when a lone surrogate, a NUL in a user_id and a timestamp years ahead arrive, then a good update
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    send(
        ("user.updated", SURROGATE_UPDATE),
        ("user.updated", user_event("user.updated", "u\x00", at(11), name="NUL")),
        ("user.updated", user_event("user.updated", "u1", future, status="inactive")),
        ("user.updated", user_event("user.updated", "u1", at(20), name="After the bad ones")),
        key=b"u1",
    )
    consumer.wait_total(5)

    # then the three went to the dead-letter topic with their reasons, and the good one applied
    assert consumer.counts == {"applied": 2, "bad": 3}
    assert user_hash(redis_db, "u1")["name"] == "After the bad ones"
    assert user_hash(redis_db, "u1")["status"] == "active"
    wait_for(lambda: committed(kafka_bootstrap, consumer.group_id, user_topics["user.updated"]) == 4, "commit")
    consumer.stop()
    source = user_topics["user.updated"].encode()
    records = read_topic(
        kafka_bootstrap,
        django_settings.KAFKA_TOPIC_USER_EVENTS_DLQ,
        lambda found: sum(dict(r.headers).get("source_topic") == source for r in found) == 3,
    )
    dead = {
        dict(r.headers)["source_offset"]: dict(r.headers)["dlq_reason"]
        for r in records
        if dict(r.headers).get("source_topic") == source
    }
    assert dead[b"0"] == b"name is not valid Unicode (lone surrogate)"
    assert dead[b"1"] == b"user_id contains a control character"
    assert dead[b"2"].startswith(b"timestamp is ")
    assert dead[b"2"].endswith(b"s in the future (more than USER_EVENT_MAX_FUTURE_SKEW_SECONDS=300)")
    assert len(dead) == 3


def test_an_unexpected_error_dead_letters_the_message_instead_of_a_crash_loop(
    kafka_bootstrap: str, send: Any, start_consumer: Any, monkeypatch: pytest.MonkeyPatch, redis_db: redis.Redis
) -> None:
    # A fault no message can cause any more (the parser refuses what used to raise):
    # a stand-in parser raises for one user, as an unforeseen bug would.
    real = consumer_module.message_parse

    def parse(*, topic: str, value: bytes | None) -> Any:
        if b'"user_id": "boom"' in (value or b""):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(topic=topic, value=value)

    monkeypatch.setattr(consumer_module, "message_parse", parse)
    consumer = start_consumer()
    send(("user.created", created("boom", at(0))), ("user.created", created("fine", at(1))))
    consumer.wait_total(2)
    consumer.stop()

    assert consumer.counts == {"bad": 1, "applied": 1}
    assert user_hash(redis_db, "fine")["name"] == "Name fine"
