"""A poll's applies go to Redis as one pipeline: the same effects and outcomes as one by one.

Real broker, Redis and PostgreSQL. The messages are produced before the consumer
starts, so its first poll holds them all; a spy on the consumer's events_apply
(the real one, called through) shows which went to Redis together.
"""

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest
import redis
from django.db import OperationalError
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from redis.exceptions import ConnectionError as RedisConnectionError

from orders.models import Order, OrderStatus
from tests.support.users import (
    at,
    committed,
    created,
    order_for,
    user_event,
    user_hash,
    users_snapshot,
    users_unreachable,
)
from tests.support.waiting import wait_for
from users_cache import consumer as consumer_module
from users_cache.consumer import UserEventConsumer
from users_cache.handlers import message_handle
from users_cache.store import ApplyCommand, events_apply

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

Sent = list[tuple[str, bytes]]


@pytest.fixture
def pipelines(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The event markers each events_apply call of the consumer carried, in call order."""
    calls: list[list[str]] = []

    def spy(commands: Sequence[ApplyCommand]) -> list[str]:
        calls.append([command.keys[1] for command in commands])
        return events_apply(commands)

    monkeypatch.setattr(consumer_module, "events_apply", spy)
    return calls


def handled(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    """(topic, offset, outcome) of every message the consumer recorded, in its order (its log lines)."""
    lines = [r for r in caplog.records if r.name == "users_cache.consumer" and r.msg.startswith("User event ")]
    return [(args[1], args[3], args[4]) for args in (cast(tuple[Any, ...], r.args) for r in lines)]


def one_by_one(sent: Sent, order: list[tuple[str, int, str]], topics: dict[str, str]) -> list[str]:
    """Handle the sent messages with message_handle, one call each, in the consumer's order."""
    values: dict[tuple[str, int], bytes] = {}
    for event_type, value in sent:  # one partition per topic: a topic's offsets are its send order
        topic = topics[event_type]
        values[(topic, sum(1 for key in values if key[0] == topic))] = value
    return [message_handle(topic=topic, value=values[(topic, offset)]).result for topic, offset, _ in order]


def marker(value: bytes) -> str:
    return "users:event:" + event_id_of(value)


def event_id_of(value: bytes) -> str:
    return value.split(b'"event_id": "')[1].split(b'"')[0].decode()


def batch_event_id(batch: dict[TopicPartition, list[ConsumerRecord]], topic: str) -> str:
    """The event id of the one message of `topic` in the batch."""
    (value,) = [r.value for records in batch.values() for r in records if r.topic == topic]
    return event_id_of(value)


def record(topic: str, offset: int, value: bytes, partition: int = 0) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, -1, offset, 0, 0, None, value, [], None, -1, len(value), -1)


def poll_of(messages: list[tuple[str, int, bytes]]) -> dict[TopicPartition, list[ConsumerRecord]]:
    """A poll of (topic, partition, value), each partition's records in the order given (its offsets)."""
    batch: dict[TopicPartition, list[ConsumerRecord]] = {}
    for topic, partition, value in messages:
        records = batch.setdefault(TopicPartition(topic, partition), [])
        records.append(record(topic, len(records), value, partition))
    return batch


def test_a_poll_mixing_creates_updates_a_delete_and_a_bad_message_ends_as_one_by_one(
    user_topics: dict[str, str], redis_db: redis.Redis, pipelines: list[list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="users_cache.consumer")
    # given a poll (records made by hand, so their order is fixed): creates, then a delete between
    # them and the updates (one stale, one resent, one of the deleted user, one bad)
    renamed = user_event("user.updated", "u1", at(10), name="Renamed")
    sent: Sent = [
        *[("user.created", created(f"u{n}", at(n))) for n in range(1, 6)],
        ("user.deleted", user_event("user.deleted", "u4", at(40), reason="account_closed")),
        ("user.updated", renamed),
        ("user.updated", user_event("user.updated", "u2", at(20), status="inactive")),
        ("user.updated", b"{not json"),
        ("user.updated", user_event("user.updated", "u2", at(15), name="Older")),
        ("user.updated", renamed),
        ("user.updated", user_event("user.updated", "u4", at(50), name="After the delete")),
        ("user.updated", user_event("user.updated", "u3", at(30), email="u3@new.example.com")),
    ]
    batch: dict[TopicPartition, list[ConsumerRecord]] = {}
    for event_type, value in sent:
        records = batch.setdefault(TopicPartition(user_topics[event_type], 0), [])
        records.append(record(user_topics[event_type], len(records), value))
    consumer = UserEventConsumer(group_id="test-batch")

    # when the consumer handles it
    offsets = consumer.handle_poll(batch)
    batched = users_snapshot(redis_db)

    # then every event went to Redis together, the delete's tombstone among them
    assert pipelines == [[marker(value) for _, value in sent if value != b"{not json"]]
    # and every offset is safe to commit
    assert {tp.topic: meta.offset for tp, meta in offsets.items()} == {
        user_topics["user.created"]: 5,
        user_topics["user.deleted"]: 1,
        user_topics["user.updated"]: 7,
    }
    assert consumer.stats.counts == {"applied": 9, "bad": 1, "stale": 2, "duplicate": 1}

    # and the outcomes and Redis, byte for byte, are those of handling them one by one
    redis_db.flushdb()
    expected = [message_handle(topic=user_topics[event_type], value=value) for event_type, value in sent]
    assert [outcome.result for outcome in expected] == [outcome for _, _, outcome in handled(caplog)]
    assert users_snapshot(redis_db) == batched
    assert (user_hash(redis_db, "u4")["deleted"], user_hash(redis_db, "u2")["status"]) == ("1", "inactive")


def test_a_poll_read_from_kafka_ends_as_one_by_one_in_the_order_it_was_handled(
    send: Callable[..., None],
    start_consumer: Any,
    user_topics: dict[str, str],
    redis_db: redis.Redis,
    pipelines: list[list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given events of several users on the three topics, produced before the consumer starts
    caplog.set_level(logging.DEBUG, logger="users_cache.consumer")
    sent: Sent = [
        *[("user.created", created(f"u{n}", at(n))) for n in range(1, 6)],
        ("user.updated", user_event("user.updated", "u1", at(10), name="Renamed")),
        ("user.updated", user_event("user.updated", "u2", at(20), status="inactive")),
        ("user.updated", b"{not json"),
        ("user.updated", user_event("user.updated", "u2", at(15), name="Older")),
        ("user.deleted", user_event("user.deleted", "u4", at(40), reason="account_closed")),
        ("user.created", created("u6", at(6))),
    ]
    send(*sent)

    # when the consumer reads them
    consumer = start_consumer()
    consumer.wait_total(len(sent))
    consumer.stop()
    order = handled(caplog)
    batched = users_snapshot(redis_db)

    # then the applies went to Redis in pipelines (the topics come in whatever order the fetch gives)
    assert len(order) == len(sent)
    assert max(len(call) for call in pipelines) > 1
    assert sum(len(call) for call in pipelines) == len(sent) - 1  # all but the bad message
    # and the outcomes and Redis, byte for byte, are those of handling them one by one in that order
    redis_db.flushdb()
    assert one_by_one(sent, order, user_topics) == [outcome for _, _, outcome in order]
    assert users_snapshot(redis_db) == batched


def test_order_within_a_user_is_kept_inside_a_pipeline(
    send: Callable[..., None],
    start_consumer: Any,
    user_topics: dict[str, str],
    redis_db: redis.Redis,
    pipelines: list[list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a create and then updates of one user, the third older than the second
    caplog.set_level(logging.DEBUG, logger="users_cache.consumer")
    updates = [
        user_event("user.updated", "u1", at(10), name="First"),
        user_event("user.updated", "u1", at(30), name="Newest"),
        user_event("user.updated", "u1", at(20), name="Stale"),
        user_event("user.updated", "u1", at(40), email="u1@new.example.com"),
    ]
    send(("user.created", created("u1", at(0))), *[("user.updated", value) for value in updates])

    # when the consumer reads them in one poll
    consumer = start_consumer()
    consumer.wait_total(5)
    consumer.stop()

    # then they went to Redis in one pipeline, in topic order: the later update wins, the stale one loses
    assert any({marker(value) for value in updates} <= set(call) for call in pipelines)
    outcomes = [outcome for topic, _, outcome in handled(caplog) if topic == user_topics["user.updated"]]
    assert outcomes == ["applied", "applied", "stale", "applied"]
    stored = user_hash(redis_db, "u1")
    assert (stored["name"], stored["status"], stored["email"]) == ("Newest", "active", "u1@new.example.com")
    assert stored["_ts"] == str(int(at(40).timestamp() * 1000))


def test_redis_failing_during_a_pipeline_commits_nothing_and_the_redo_stores_each_effect_once(
    kafka_bootstrap: str,
    send: Callable[..., None],
    start_consumer: Any,
    user_topics: dict[str, str],
    redis_db: redis.Redis,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given eight new users, and a Redis that goes away in the middle of the first pipeline: the
    # server has applied its first half when the connection drops, and refuses connections after
    caplog.set_level(logging.DEBUG, logger="users_cache.consumer")
    sent: Sent = [("user.created", created(f"u{n}", at(n))) for n in range(8)]
    send(*sent)
    reachable = settings.CACHES
    first_call: list[int] = []

    def failing_once(commands: Sequence[ApplyCommand]) -> list[str]:
        if first_call:
            return events_apply(commands)
        first_call.append(len(commands))
        events_apply(commands[: len(commands) // 2])
        settings.CACHES = users_unreachable(reachable)
        raise RedisConnectionError("Connection closed by server.")

    monkeypatch.setattr(consumer_module, "events_apply", failing_once)
    consumer = start_consumer()
    wait_for(lambda: sum("Cannot apply" in r.getMessage() for r in caplog.records) >= 2, "two failed attempts")

    # then nothing is recorded or committed while Redis is down, though half the pipeline was stored
    half = first_call[0] // 2
    assert first_call[0] > 1
    assert consumer.consumer.stats.total == 0
    assert committed(kafka_bootstrap, consumer.group_id, user_topics["user.created"]) is None
    assert len(list(redis_db.scan_iter(match="users:user:*"))) == half

    # when Redis is back, the whole poll is redone and committed
    settings.CACHES = reachable
    consumer.wait_total(len(sent))
    wait_for(lambda: committed(kafka_bootstrap, consumer.group_id, user_topics["user.created"]) == 8, "commit")
    consumer.stop()

    # then the events the server had applied before the drop are duplicates, each effect stored once,
    # and Redis is what one-by-one handling gives
    assert consumer.counts == {"applied": len(sent) - half, "duplicate": half}
    batched = users_snapshot(redis_db)
    redis_db.flushdb()
    order = [(user_topics["user.created"], offset, "") for offset in range(len(sent))]
    assert one_by_one(sent, order, user_topics) == ["applied"] * len(sent)
    assert users_snapshot(redis_db) == batched


def test_deletes_go_in_the_pipeline_and_a_second_delete_of_a_user_splits_it_ending_as_one_by_one(
    user_topics: dict[str, str], redis_db: redis.Redis, pipelines: list[list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="users_cache.consumer")
    # given a poll: creates of u1-u3; deletes of u9 (who has an open order), of u9 again (the same
    # event resent) and of u2 (created earlier in the poll); then updates, one of u2 after its delete
    order = order_for("u9")
    topics = user_topics
    u9_deleted = user_event("user.deleted", "u9", at(40), reason="account_closed")
    messages = [
        *[(topics["user.created"], 0, created(f"u{n}", at(n))) for n in range(1, 4)],
        (topics["user.deleted"], 0, u9_deleted),
        (topics["user.deleted"], 0, u9_deleted),
        (topics["user.deleted"], 1, user_event("user.deleted", "u2", at(45), reason="account_closed")),
        (topics["user.updated"], 0, user_event("user.updated", "u1", at(10), name="Renamed")),
        (topics["user.updated"], 0, user_event("user.updated", "u2", at(50), name="After the delete")),
        (topics["user.updated"], 0, user_event("user.updated", "u3", at(30), email="u3@new.example.com")),
    ]
    batch = poll_of(messages)
    consumer = UserEventConsumer(group_id="test-batch")

    # when the consumer handles it
    offsets = consumer.handle_poll(batch)
    batched = users_snapshot(redis_db)

    # then the creates and u9's delete went to Redis together; the resend of u9's delete flushed them
    # (a delete is marked processed only after its cancels) and went with the rest
    values = [value for _, _, value in messages]
    assert pipelines == [[marker(value) for value in values[:4]], [marker(value) for value in values[4:]]]
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "user_deleted")
    assert consumer.stats.cancelled_orders == 1
    assert consumer.stats.counts == {"applied": 7, "duplicate": 1, "stale": 1}
    # and every offset is safe to commit
    assert {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()} == {
        (topics["user.created"], 0): 3,
        (topics["user.deleted"], 0): 2,
        (topics["user.deleted"], 1): 1,
        (topics["user.updated"], 0): 3,
    }

    # and the outcomes and Redis, byte for byte, are those of handling them one by one in that order
    redis_db.flushdb()
    order_handled = handled(caplog)
    lines = [r for r in caplog.records if r.name == "users_cache.consumer" and r.msg.startswith("User event ")]
    places = [cast(tuple[Any, ...], line.args)[1:4] for line in lines]  # topic, partition, offset
    value_at = {(r.topic, r.partition, r.offset): r.value for records in batch.values() for r in records}
    expected = [message_handle(topic=place[0], value=value_at[place]).result for place in places]
    assert expected == [outcome for _, _, outcome in order_handled]
    assert users_snapshot(redis_db) == batched
    assert Order.objects.filter(user_id="u9", status=OrderStatus.CANCELLED).count() == 1


def test_offsets_never_run_ahead_of_what_is_stored_when_the_deleted_users_orders_cannot_be_read(
    user_topics: dict[str, str], redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a poll: creates of u1, u2 and a delete of u9, who has an open order; PostgreSQL failing on
    # the lookup of u9's open orders (a mock: the real outage is make chaos's), the consumer told to stop
    order = order_for("u9")
    topics = user_topics
    batch = poll_of(
        [
            (topics["user.created"], 0, created("u1", at(1))),
            (topics["user.created"], 0, created("u2", at(2))),
            (topics["user.deleted"], 0, user_event("user.deleted", "u9", at(40), reason="account_closed")),
        ]
    )
    consumer = UserEventConsumer(group_id="test-batch")
    lookups: list[list[str]] = []

    def failing(*, user_ids: list[str]) -> Any:
        lookups.append(user_ids)
        consumer.stop.set()
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(consumer_module, "orders_open_of_deleted_users", failing)

    # when the consumer handles it
    offsets = consumer.handle_poll(batch)

    # then nothing is recorded or safe to commit, though the pipeline stored the creates and u9's tombstone,
    # and u9's order is still open
    assert lookups == [["u9"]]
    assert offsets == {}
    assert consumer.stats.counts == {}
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert user_hash(redis_db, "u9")["deleted"] == "1"
    assert not redis_db.exists(f"users:event:{batch_event_id(batch, topics['user.deleted'])}")

    # when the poll comes again (the offsets were not committed) with PostgreSQL back
    monkeypatch.undo()
    consumer = UserEventConsumer(group_id="test-batch")
    offsets = consumer.handle_poll(batch)

    # then the creates are duplicates, the delete is done: its order cancelled, the event marked
    assert consumer.stats.counts == {"duplicate": 2, "applied": 1}
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert redis_db.get(f"users:event:{batch_event_id(batch, topics['user.deleted'])}") == b"applied"
    assert {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()} == {
        (topics["user.created"], 0): 2,
        (topics["user.deleted"], 0): 1,
    }


def test_an_unexpected_error_reading_the_deleted_users_orders_does_the_deletes_one_by_one(
    user_topics: dict[str, str], redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a poll with deletes of u8 and u9 (each with an open order), and the poll's lookup of their
    # open orders failing on something else than an outage (a mock: no real input causes it)
    orders = [order_for("u8"), order_for("u9")]
    topics = user_topics
    batch = poll_of(
        [
            (topics["user.deleted"], 0, user_event("user.deleted", "u8", at(40), reason="account_closed")),
            (topics["user.deleted"], 0, user_event("user.deleted", "u9", at(41), reason="account_closed")),
        ]
    )

    def failing(*, user_ids: list[str]) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(consumer_module, "orders_open_of_deleted_users", failing)
    consumer = UserEventConsumer(group_id="test-batch")

    # when the consumer handles it
    offsets = consumer.handle_poll(batch)

    # then each delete was done on its own: both orders cancelled, both events applied and committed
    assert consumer.stats.counts == {"applied": 2}
    assert consumer.stats.cancelled_orders == 2
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
    assert {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()} == {(topics["user.deleted"], 0): 2}
