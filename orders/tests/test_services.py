"""orders.services: each write is one transaction, whole or not at all."""

import uuid
from decimal import Decimal

import pytest
from django.db import DataError, IntegrityError

from orders import services
from orders.models import Order, OrderItem, OrderStatusChange
from orders.services import ItemInput
from orders.tests.factories import ItemInputFactory, OrderFactory
from orders.transitions import InvalidTransition
from orders_project.rfc3339 import rfc3339
from outbox.models import OutboxEvent


def _create(**overrides):
    args = {
        "user_id": "user123",
        "currency": "EUR",
        "items": [ItemInput("prod1", 2, Decimal("49.99")), ItemInput("prod2", 1, Decimal("0.02"))],
        "shipping_address": "1 Main St",
        "changed_by": "client:alice",
        **overrides,
    }
    return services.order_create(**args)


def _counts():
    return {
        "orders": Order.objects.count(),
        "items": OrderItem.objects.count(),
        "history": OrderStatusChange.objects.count(),
        "outbox": OutboxEvent.objects.count(),
    }


@pytest.mark.django_db
def test_order_create_writes_order_items_history_and_event_together():
    order = _create(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

    order.refresh_from_db()
    assert (order.status, order.version, order.total_amount, order.currency) == (
        "pending",
        1,
        Decimal("100.00"),
        "EUR",
    )
    assert order.created_at == order.updated_at
    assert list(order.items.values_list("product_id", "quantity", "price")) == [
        ("prod1", 2, Decimal("49.99")),
        ("prod2", 1, Decimal("0.02")),
    ]
    history = order.history.get()
    assert (history.order_version, history.from_status, history.to_status, history.changed_by) == (
        1,
        "",
        "pending",
        "client:alice",
    )
    assert history.changed_at == order.created_at
    event = OutboxEvent.objects.get()
    assert event.payload["data"]["items"] == [
        {"product_id": "prod1", "quantity": 2, "price": "49.99"},
        {"product_id": "prod2", "quantity": 1, "price": "0.02"},
    ]
    assert event.payload["data"]["total_amount"] == "100.00"
    assert event.payload["data"]["created_at"] == rfc3339(order.created_at)
    assert event.headers["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("items", "constraint"),
    [
        # The order row is written first; the bad item fails its CHECK afterwards.
        ([ItemInput("ok", 1, Decimal("10.00")), ItemInput("bad", 0, Decimal("1.00"))], "order_item_quantity_positive"),
        (
            [ItemInput("ok", 1, Decimal("10.00")), ItemInput("bad", 1, Decimal("-1.00"))],
            "order_item_price_non_negative",
        ),
    ],
)
def test_order_create_failing_on_an_item_constraint_leaves_nothing(items, constraint):
    # given a committed order already in the tables
    before = OrderFactory.create()
    counts = _counts()

    # when a create fails in PostgreSQL after its order row was inserted
    with pytest.raises(IntegrityError, match=constraint):
        _create(items=items)

    # then no order, item, history row or event of it remains
    assert _counts() == counts
    assert list(Order.objects.values_list("id", flat=True)) == [before.id]


@pytest.mark.django_db(transaction=True)
def test_order_create_failing_on_the_outbox_insert_leaves_nothing(settings):
    # given a topic name longer than the outbox's column takes (PostgreSQL will refuse the row)
    OrderFactory.create()
    counts = _counts()
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "order.created": "t" * 250}

    # when a create reaches its last statement, the outbox insert, and PostgreSQL refuses it
    with pytest.raises(DataError, match="character varying"):
        _create()

    # then the order, items and history written before it are gone too
    assert _counts() == counts


@pytest.mark.django_db
def test_orders_create_returns_the_rows_as_stored_with_item_ids_in_list_order():
    # given two orders, one with two items, written by one call
    specs = [
        services.OrderInput("user-1", "USD", [ItemInput("a", 1, Decimal("1.5")), ItemInput("b", 2, Decimal("2"))]),
        services.OrderInput("user-2", "EUR", [ItemInput("c", 3, Decimal("0.10"))], shipping_address="1 Main St"),
    ]
    created = services.orders_create(orders=specs, changed_by="system:test")

    # then each returned order and item is the stored row, items in list order with their ids
    for order in created:
        stored = Order.objects.get(pk=order.pk)
        columns = ("user_id", "status", "currency", "total_amount", "shipping_address", "version", "created_at")
        assert [getattr(order, name) for name in columns] == [getattr(stored, name) for name in columns]
        assert [(item.pk, item.product_id, item.quantity, item.price) for item in order.item_list] == list(
            stored.items.order_by("id").values_list("id", "product_id", "quantity", "price")
        )
    assert [str(order.total_amount) for order in created] == ["5.50", "0.30"]
    assert [event.key for event in OutboxEvent.objects.order_by("id")] == ["user-1", "user-2"]
    # and they are saved instances: a save updates the row
    created[1].shipping_address = "2 Main St"
    created[1].save()
    assert Order.objects.get(pk=created[1].pk).shipping_address == "2 Main St"


@pytest.mark.django_db
def test_order_cancel_changes_status_version_history_and_writes_one_event():
    order = OrderFactory.create(user_id="user123")

    cancelled = services.order_cancel(order_id=order.id, reason="out of stock", changed_by="system:test")

    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.version, cancelled.cancel_reason) == ("cancelled", 2, "out of stock")
    assert cancelled.updated_at == cancelled.cancelled_at
    change = cancelled.history.get(order_version=2)
    assert (change.from_status, change.to_status, change.reason, change.changed_by) == (
        "pending",
        "cancelled",
        "out of stock",
        "system:test",
    )
    assert change.changed_at == cancelled.cancelled_at
    event = OutboxEvent.objects.get(event_type="order.cancelled")
    assert event.key == "user123"
    assert event.payload["data"] == {
        "order_id": str(order.id),
        "user_id": "user123",
        "status": "cancelled",
        "order_version": 2,
        "reason": "out of stock",
        "cancelled_at": rfc3339(cancelled.cancelled_at),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["shipped", "cancelled"])
def test_order_cancel_refuses_a_final_order_and_writes_nothing(status):
    order = OrderFactory.create(status=status)
    counts = _counts()

    with pytest.raises(InvalidTransition) as refused:
        services.order_cancel(order_id=order.id, reason="late", changed_by="system:test")

    assert (refused.value.code, refused.value.http_status) == ("order_not_cancellable", 409)
    assert _counts() == counts
    order.refresh_from_db()
    assert order.status == status


@pytest.mark.django_db
def test_order_cancel_of_an_unknown_order_raises_does_not_exist():
    with pytest.raises(Order.DoesNotExist):
        services.order_cancel(order_id=uuid.uuid4(), reason="x", changed_by="system:test")


@pytest.mark.django_db
def test_factory_orders_are_consistent_with_the_service():
    # The factory goes through the service, so each order has its history and event.
    order = OrderFactory.create(items=ItemInputFactory.build_batch(3), status="confirmed")

    assert order.items.count() == 3
    assert order.total_amount == sum(i.price * i.quantity for i in order.items.all())
    assert list(order.history.values_list("order_version", "to_status")) == [(1, "pending"), (2, "confirmed")]
    assert OutboxEvent.objects.filter(event_type="order.created").count() == 1
