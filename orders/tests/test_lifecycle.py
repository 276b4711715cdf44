"""orders_advance in one thread: timers from settings, what a move writes, bounded batches."""

import datetime as dt
import re

import pytest
from django.db.models import F
from django.test import override_settings

from orders.lifecycle import CARRIERS, AdvanceResult, orders_advance
from orders.models import Order, OrderStatusChange
from orders.services import order_cancel
from orders_project.rfc3339 import rfc3339
from outbox.models import OutboxEvent
from tests.support.lifecycle import clock_advance, histories, lifecycle_violations, order_new, orders_many

pytestmark = pytest.mark.django_db

CREATED = ("", "pending")
CONFIRM = ("pending", "confirmed")
SHIP = ("confirmed", "shipped")


def _data(order, event_type):
    return OutboxEvent.objects.get(event_type=event_type, payload__data__order_id=str(order.id)).payload["data"]


@override_settings(ORDER_CONFIRM_DELAY=0, ORDER_SHIP_DELAY=0)
def test_with_zero_delays_an_order_created_now_confirms_and_ships_in_one_run():
    # given an order created just now, through the service
    order = order_new(user_id="user-42")

    # when the processor runs once
    result = orders_advance()

    # then it was confirmed and shipped, with one history row and one event per move
    assert result == AdvanceResult(confirmed=1, shipped=1)
    order.refresh_from_db()
    assert (order.status, order.version) == ("shipped", 3)
    assert histories() == {order.id: [CREATED, CONFIRM, SHIP]}
    rows = list(OrderStatusChange.objects.filter(order=order, order_version__gt=1).values_list("changed_by", flat=True))
    assert rows == ["system:lifecycle", "system:lifecycle"]
    assert re.fullmatch(r"pay_[0-9a-f]{32}", order.payment_id)
    assert re.fullmatch(r"TRK[0-9A-F]{12}", order.tracking_number)
    assert order.carrier in CARRIERS
    assert order.confirmed_at is not None and order.shipped_at is not None
    assert order.estimated_delivery == (order.shipped_at.astimezone(dt.UTC) + dt.timedelta(days=3)).date()
    assert order.confirmed_at <= order.shipped_at
    assert _data(order, "order.confirmed") == {
        "order_id": str(order.id),
        "user_id": "user-42",
        "status": "confirmed",
        "order_version": 2,
        "payment_id": order.payment_id,
        "total_amount": "19.98",
        "currency": "USD",
        "confirmed_at": rfc3339(order.confirmed_at),
    }
    assert _data(order, "order.shipped") == {
        "order_id": str(order.id),
        "user_id": "user-42",
        "status": "shipped",
        "order_version": 3,
        "tracking_number": order.tracking_number,
        "carrier": order.carrier,
        "estimated_delivery": order.estimated_delivery.isoformat(),
        "shipped_at": rfc3339(order.shipped_at),
    }
    assert lifecycle_violations() == []


@override_settings(ORDER_CONFIRM_DELAY=30, ORDER_SHIP_DELAY=120)
def test_an_order_that_is_not_due_is_not_moved():
    # given an order 20 s old with a 30 s confirm delay
    order = order_new()
    clock_advance(20)

    # when the processor runs
    result = orders_advance()

    # then nothing was written
    assert result == AdvanceResult(confirmed=0, shipped=0)
    order.refresh_from_db()
    assert (order.status, order.version, order.confirmed_at, order.payment_id) == ("pending", 1, None, "")
    assert OrderStatusChange.objects.count() == 1
    assert list(OutboxEvent.objects.values_list("event_type", flat=True)) == ["order.created"]


@override_settings(ORDER_CONFIRM_DELAY=30, ORDER_SHIP_DELAY=120)
def test_confirm_and_ship_each_wait_for_their_own_delay():
    # given an order
    order = order_new()

    # when 30 s pass, it is confirmed but not shipped in the same run
    clock_advance(30)
    assert orders_advance() == AdvanceResult(confirmed=1, shipped=0)

    # when 100 s more pass, the ship delay (from confirmation) has not yet run out
    clock_advance(100)
    assert orders_advance() == AdvanceResult(confirmed=0, shipped=0)

    # when 20 s more pass, it ships
    clock_advance(20)
    assert orders_advance() == AdvanceResult(confirmed=0, shipped=1)
    assert histories() == {order.id: [CREATED, CONFIRM, SHIP]}
    assert lifecycle_violations() == []


def test_delays_are_read_from_settings_at_each_run():
    # given an order 60 s old
    order_new()
    clock_advance(60)

    # when the confirm delay is 300 s, it is not due; when it is 60 s, it is
    with override_settings(ORDER_CONFIRM_DELAY=300, ORDER_SHIP_DELAY=0):
        assert orders_advance() == AdvanceResult(confirmed=0, shipped=0)
    with override_settings(ORDER_CONFIRM_DELAY=60, ORDER_SHIP_DELAY=3600):
        assert orders_advance() == AdvanceResult(confirmed=1, shipped=0)

    # and the ship delay likewise
    clock_advance(100)
    with override_settings(ORDER_CONFIRM_DELAY=60, ORDER_SHIP_DELAY=101):
        assert orders_advance() == AdvanceResult(confirmed=0, shipped=0)
    with override_settings(ORDER_CONFIRM_DELAY=60, ORDER_SHIP_DELAY=100):
        assert orders_advance() == AdvanceResult(confirmed=0, shipped=1)


@override_settings(ORDER_CONFIRM_DELAY=0, ORDER_SHIP_DELAY=3600)
def test_a_run_is_bounded_by_batch_size_times_max_batches_and_takes_the_oldest_first():
    # given five due orders, oldest first
    ids = orders_many(5)
    for age, order_id in zip([50, 40, 30, 20, 10], ids, strict=True):
        Order.objects.filter(pk=order_id).update(created_at=F("created_at") - dt.timedelta(seconds=age))
        OrderStatusChange.objects.filter(order_id=order_id).update(
            changed_at=F("changed_at") - dt.timedelta(seconds=age)
        )

    # when a run may do two batches of two
    result = orders_advance(batch_size=2, max_batches=2)

    # then the four oldest were confirmed and the newest waits for the next run
    assert result == AdvanceResult(confirmed=4, shipped=0)
    statuses = dict(Order.objects.values_list("id", "status"))
    assert [statuses[order_id] for order_id in ids] == ["confirmed"] * 4 + ["pending"]
    assert orders_advance(batch_size=2, max_batches=2) == AdvanceResult(confirmed=1, shipped=0)
    assert lifecycle_violations() == []


@override_settings(ORDER_CONFIRM_DELAY=0, ORDER_SHIP_DELAY=0)
def test_cancelled_and_shipped_orders_are_never_moved_again():
    # given a cancelled pending order, a cancelled confirmed order and a shipped one
    cancelled_pending = order_new()
    order_cancel(order_id=cancelled_pending.id, reason="changed my mind", changed_by="system:test")
    with override_settings(ORDER_SHIP_DELAY=3600):
        cancelled_confirmed = order_new()
        assert orders_advance() == AdvanceResult(confirmed=1, shipped=0)
    order_cancel(order_id=cancelled_confirmed.id, reason="too slow", changed_by="system:test")
    shipped = order_new()
    assert orders_advance() == AdvanceResult(confirmed=1, shipped=1)

    # when the processor runs again, long after
    clock_advance(10_000)
    result = orders_advance()

    # then nothing moved
    assert result == AdvanceResult(confirmed=0, shipped=0)
    assert histories() == {
        cancelled_pending.id: [CREATED, ("pending", "cancelled")],
        cancelled_confirmed.id: [CREATED, CONFIRM, ("confirmed", "cancelled")],
        shipped.id: [CREATED, CONFIRM, SHIP],
    }
    assert OutboxEvent.objects.count() == 8
    assert lifecycle_violations() == []
