"""message_handle: one message in, one outcome out, without Kafka (real Redis, real PostgreSQL)."""

import datetime as dt
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.db import transaction
from redis.exceptions import RedisError

from devstack.threads import run_in_threads
from orders.models import Order, OrderStatus, OrderStatusChange
from orders.services import (
    ItemInput,
    UserInactive,
    UserNotFound,
    order_create,
    order_customer_check,
    orders_open_of_deleted_users,
)
from orders.tests.factories import OrderFactory
from outbox.models import OutboxEvent
from tests.support.users import (
    WAIT_SECONDS,
    at,
    created,
    lock_waiters,
    ms,
    order_for,
    user_event,
    user_hash,
    users_unreachable,
)
from tests.support.waiting import wait_for
from users_cache.handlers import CANCEL_REASON, Outcome, message_handle, topic_kind
from users_cache.store import event_apply, user_read

pytestmark = pytest.mark.django_db

ITEMS = [ItemInput("prod-1", 1, Decimal("9.99"))]
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
    later = order_for("gone")

    outcome = message_handle(topic=TOPICS["deleted"], value=value)

    assert outcome == Outcome("duplicate")
    later.refresh_from_db()
    assert later.status == OrderStatus.PENDING
    assert OutboxEvent.objects.filter(event_type="order.cancelled").count() == 1


def test_redis_unreachable_raises_for_the_caller_to_retry_and_cancels_nothing(settings: Any) -> None:
    order = OrderFactory.create(user_id="gone", status=OrderStatus.PENDING)
    settings.CACHES = users_unreachable(settings.CACHES)

    with pytest.raises(RedisError):
        message_handle(topic=TOPICS["deleted"], value=_deleted("gone"))

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not OutboxEvent.objects.filter(event_type="order.cancelled").exists()


@pytest.mark.django_db(transaction=True)
def test_a_delete_racing_an_order_that_passed_the_user_check_still_cancels_it(
    redis_db: redis.Redis, settings: Any
) -> None:
    # given a known, active user
    settings.ORDER_REQUIRE_KNOWN_USER = True
    assert message_handle(topic=TOPICS["created"], value=created("racer", at(0))) == Outcome("applied")
    checked, release = threading.Event(), threading.Event()

    def create_and_hold() -> Order:
        # an order that passed the user check and is still inside its transaction
        with transaction.atomic():
            order = order_create(user_id="racer", currency="EUR", items=ITEMS, changed_by="client:test")
            checked.set()
            assert release.wait(WAIT_SECONDS)
        return order

    def delete() -> Outcome:
        assert checked.wait(WAIT_SECONDS)
        return message_handle(topic=TOPICS["deleted"], value=_deleted("racer"))

    def commit_when_the_delete_waits() -> None:
        # the tombstone is written first, then the cancel waits for the create to commit
        wait_for(lambda: (user := user_read("racer")) is not None and user.deleted, "the tombstone")
        wait_for(lambda: lock_waiters() == 1, "the delete to wait for the create's commit")
        release.set()

    # when the user is deleted while that order is in flight
    (order, outcome, _), _ = run_in_threads([create_and_hold, delete, commit_when_the_delete_waits], timeout=60)

    # then the delete cancelled the order once it was committed
    assert outcome == Outcome("applied", cancelled_orders=1)
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, CANCEL_REASON)
    assert [e.payload["data"]["order_id"] for e in OutboxEvent.objects.filter(event_type="order.cancelled")] == [
        str(order.pk)
    ]
    # and a create that checks after the tombstone is refused, even if an earlier check let it through
    with pytest.raises(UserNotFound):
        order_create(user_id="racer", currency="EUR", items=ITEMS, changed_by="client:test")
    assert Order.objects.filter(user_id="racer").count() == 1


@pytest.mark.django_db(transaction=True)
def test_consumers_deleting_the_same_users_in_opposite_orders_wait_for_creates_in_flight_and_never_deadlock(
    settings: Any,
) -> None:
    # given orders of x and y created in one transaction that has not committed yet (holding both
    # customers' shared locks)
    settings.ORDER_REQUIRE_KNOWN_USER = False
    created, release = threading.Event(), threading.Event()

    def creates_in_flight() -> list[uuid.UUID]:
        with transaction.atomic():
            ids = [order_create(user_id=u, currency="EUR", items=ITEMS, changed_by="client:test").pk for u in "xy"]
            created.set()
            assert release.wait(WAIT_SECONDS)
        return ids

    def lookup(user_ids: list[str]) -> dict[str, list[uuid.UUID]]:
        assert created.wait(WAIT_SECONDS)
        return orders_open_of_deleted_users(user_ids=user_ids)

    def commit_when_both_wait() -> None:
        wait_for(lambda: lock_waiters() == 2, "both lookups to wait for the creates' commit")
        release.set()

    # when two consumers look up the open orders of x and y, one as [x, y], the other as [y, x]
    (ids, one, other, _), _ = run_in_threads(
        [creates_in_flight, lambda: lookup(["x", "y"]), lambda: lookup(["y", "x"]), commit_when_both_wait], timeout=60
    )

    # then both waited for the commit and found both orders: locking in the order of the arguments,
    # each would have held one lock while waiting for the other's, and PostgreSQL would have aborted one
    assert one == other == {"x": [ids[0]], "y": [ids[1]]}


def test_a_crash_between_the_tombstone_and_the_mark_redoes_the_cancel_on_redelivery(redis_db: redis.Redis) -> None:
    # given a delete whose tombstone was stored by a process that died before it cancelled
    event_id = str(uuid.uuid4())
    fields = {"user_id": "gone"}
    applied = event_apply(
        event_id=event_id, user_id="gone", kind="deleted", timestamp_ms=ms(at(100)), fields=fields, mark=False
    )
    assert applied == "applied"
    order = order_for("gone")

    # when the event is redelivered
    outcome = message_handle(topic=TOPICS["deleted"], value=_deleted("gone", event_id=event_id))

    # then the cancel runs and only then is the event marked processed
    assert outcome == Outcome("applied", cancelled_orders=1)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert redis_db.get(f"users:event:{event_id}") == b"applied"


def test_a_delete_with_nul_in_the_user_id_is_bad_not_a_database_outage(redis_db: redis.Redis) -> None:
    outcome = message_handle(topic=TOPICS["deleted"], value=_deleted("gone\x00"))

    assert outcome == Outcome("bad", reason="user_id contains a control character")
    assert redis_db.dbsize() == 0
    assert not OutboxEvent.objects.exists()


def test_a_future_dated_update_is_refused_so_a_later_deactivation_still_stops_orders(
    redis_db: redis.Redis, settings: Any
) -> None:
    # given an active user
    settings.ORDER_REQUIRE_KNOWN_USER = True
    now = dt.datetime.now(dt.UTC)
    first = message_handle(topic=TOPICS["created"], value=created("u1", now - dt.timedelta(minutes=1)))
    assert first == Outcome("applied")

    # when an update dated a year ahead arrives, then one that deactivates the user
    future = user_event("user.updated", "u1", now + dt.timedelta(days=365), name="From the future")
    refused = message_handle(topic=TOPICS["updated"], value=future)
    inactive = user_event("user.updated", "u1", now, status="inactive")
    deactivated = message_handle(topic=TOPICS["updated"], value=inactive)

    # then the first is refused with its reason, the second applies, and the user can no longer order
    assert refused.result == "bad"
    assert refused.reason.startswith("timestamp is 3153") and refused.reason.endswith(
        "s in the future (more than USER_EVENT_MAX_FUTURE_SKEW_SECONDS=300)"
    )
    assert deactivated == Outcome("applied")
    assert user_hash(redis_db, "u1")["name"] == "Name u1"
    with pytest.raises(UserInactive):
        order_customer_check(user_id="u1")
