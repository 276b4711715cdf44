"""message_handle: one message in, one outcome out, without Kafka (real Redis, real PostgreSQL)."""

from typing import Any

import pytest
import redis
from redis.exceptions import RedisError

from devstack.procs import free_port
from orders.models import Order, OrderStatus, OrderStatusChange
from orders.tests.factories import OrderFactory
from outbox.models import OutboxEvent
from users_cache.handlers import CANCEL_REASON, Outcome, message_handle, topic_kind
from users_cache.tests.conftest import at, created, user_event, user_hash

pytestmark = pytest.mark.django_db

TOPICS = {"created": "user.created", "updated": "user.updated", "deleted": "user.deleted"}


def _deleted(user_id: str, event_id: str | None = None) -> bytes:
    return user_event("user.deleted", user_id, at(100), event_id=event_id, reason="account_closed")


def test_topic_kind_follows_the_configured_topic_names(settings: Any) -> None:
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "user.updated": "acme.users.changed"}

    assert topic_kind("acme.users.changed") == "updated"
    assert topic_kind("user.deleted") == "deleted"
    assert topic_kind("user.updated") is None
    assert topic_kind("order.created") is None


def test_created_is_applied(redis_db: redis.Redis) -> None:
    outcome = message_handle(topic=TOPICS["created"], value=created("u1", at(0)))

    assert outcome == Outcome("applied")
    assert user_hash(redis_db, "u1")["email"] == "u1@example.com"


def test_bad_message_is_reported_not_raised(redis_db: redis.Redis) -> None:
    outcome = message_handle(topic=TOPICS["updated"], value=b"{not json")

    assert outcome == Outcome("bad", reason="not JSON")
    assert redis_db.dbsize() == 0


def test_event_on_the_wrong_topic_is_bad() -> None:
    outcome = message_handle(topic=TOPICS["updated"], value=created("u1", at(0)))

    assert outcome == Outcome("bad", reason="event_type user.created on the updated topic")


def test_deleted_cancels_exactly_the_users_open_orders(redis_db: redis.Redis) -> None:
    pending = OrderFactory.create(user_id="gone", status=OrderStatus.PENDING)
    confirmed = OrderFactory.create(user_id="gone", status=OrderStatus.CONFIRMED)
    shipped = OrderFactory.create(user_id="gone", status=OrderStatus.SHIPPED)
    cancelled = OrderFactory.create(user_id="gone", status=OrderStatus.CANCELLED)
    others = OrderFactory.create(user_id="stays", status=OrderStatus.PENDING)
    before = {order.pk: (order.status, order.version) for order in (shipped, cancelled, others)}

    outcome = message_handle(topic=TOPICS["deleted"], value=_deleted("gone"))

    assert outcome == Outcome("applied", cancelled_orders=2)
    for order in (pending, confirmed):
        order.refresh_from_db()
        assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, CANCEL_REASON)
        events = OutboxEvent.objects.filter(event_type="order.cancelled", payload__data__order_id=str(order.pk))
        assert [(e.key, e.payload["data"]["reason"]) for e in events] == [("gone", CANCEL_REASON)]
        last = OrderStatusChange.objects.filter(order=order).latest("order_version")
        assert (last.to_status, last.changed_by, last.reason) == (
            OrderStatus.CANCELLED,
            "consumer:user-events",
            CANCEL_REASON,
        )
    assert {o.pk: (o.status, o.version) for o in Order.objects.filter(pk__in=before)} == before
    assert OutboxEvent.objects.filter(event_type="order.cancelled").count() == 2
    assert user_hash(redis_db, "gone")["deleted"] == "1"


def test_redelivered_delete_cancels_nothing_more(redis_db: redis.Redis) -> None:
    OrderFactory.create(user_id="gone", status=OrderStatus.PENDING)
    value = _deleted("gone")
    assert message_handle(topic=TOPICS["deleted"], value=value) == Outcome("applied", cancelled_orders=1)
    # An order that (somehow) appeared since: a redelivery must not act on it.
    later = OrderFactory.create(user_id="gone", status=OrderStatus.PENDING)

    outcome = message_handle(topic=TOPICS["deleted"], value=value)

    assert outcome == Outcome("duplicate")
    later.refresh_from_db()
    assert later.status == OrderStatus.PENDING
    assert OutboxEvent.objects.filter(event_type="order.cancelled").count() == 1


def test_redis_unreachable_raises_for_the_caller_to_retry_and_cancels_nothing(settings: Any) -> None:
    order = OrderFactory.create(user_id="gone", status=OrderStatus.PENDING)
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/{settings.REDIS_DB}"}
    }

    with pytest.raises(RedisError):
        message_handle(topic=TOPICS["deleted"], value=_deleted("gone"))

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not OutboxEvent.objects.filter(event_type="order.cancelled").exists()
