"""The order serializers' hand-written representation equals what DRF's generic walk gives.

OrderSerializer.to_representation is written out field by field for speed (list
pages represent 100 orders); these tests hold it to ModelSerializer's own output
for orders in every state, so a field added to Meta.fields, or a format changed in
settings, cannot silently differ between the two. A list page represents plain rows
(values_list) with the same function: its bytes are held to the generic walk too.
"""

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from orders.api.serializers import OrderDetailSerializer, OrderSerializer
from orders.models import Order, OrderStatus
from orders.services import ItemInput
from orders.tests.factories import ItemInputFactory, OrderFactory
from tests.support.api import ORDERS_URL, cached_user, order_url
from users_cache import services as users_cache

pytestmark = pytest.mark.django_db


def _generic(serializer: serializers.ModelSerializer, order: Order) -> dict:
    """What DRF would send: the Serializer base class's field-by-field representation."""
    return dict(serializers.Serializer.to_representation(serializer, order))


@pytest.mark.parametrize("status", list(OrderStatus))
def test_the_written_out_representation_equals_drfs_for_every_status(status):
    # given an order in that status, with items of several price shapes
    items = [
        ItemInput(product_id="p-1", quantity=3, price=Decimal("0.10")),
        ItemInput(product_id="p-ü", quantity=1, price=Decimal("999999.99")),
        ItemInput(product_id="p-3", quantity=10, price=Decimal("7")),
    ]
    order = OrderFactory.create(status=status, items=items, shipping_address="1 Main St")
    # a time on the whole second: strftime's %f writes 000000 where isoformat would drop it
    whole_second = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    Order.objects.filter(pk=order.pk).update(
        estimated_delivery=dt.date(2026, 12, 24), payment_id="pay-1", updated_at=whole_second
    )
    order = Order.objects.prefetch_related("items").get(pk=order.pk)

    # when it is represented both ways
    serializer = OrderSerializer(order)

    # then every field is equal, in the same order
    written_out, generic = serializer.data, _generic(serializer, order)
    assert list(written_out) == list(generic) == OrderSerializer.Meta.fields
    assert written_out == generic
    assert written_out["items"][0]["price"] == "0.10"
    assert written_out["updated_at"] == "2026-01-02T03:04:05.000000Z"


def test_the_detail_representation_adds_the_customer_to_the_same_fields():
    order = Order.objects.prefetch_related("items").get(pk=OrderFactory.create().pk)

    serializer = OrderDetailSerializer(order, context={"customer": None})

    assert serializer.data == _generic(serializer, order)
    assert list(serializer.data) == OrderDetailSerializer.Meta.fields


def test_a_list_page_answers_the_bytes_drfs_generic_walk_gives_for_its_orders(staff_client):
    # given orders in every state, with 0 to 3 items of varied prices, varied optional fields,
    # times on and off the whole second, created several to an instant (ties broken by id)
    statuses = list(OrderStatus)
    base = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    for n in range(60):
        order = OrderFactory.create(
            status=statuses[n % len(statuses)],
            items=ItemInputFactory.build_batch(n % 4),
            created_at=base + dt.timedelta(seconds=n // 3, microseconds=0 if n % 2 else 123456 * n),
            shipping_address="" if n % 5 == 0 else f"{n} Straße ☃",
        )
        if n % 7 == 0:
            Order.objects.filter(pk=order.pk).update(
                estimated_delivery=dt.date(2026, 12, n % 28 + 1), payment_id=f"pay-{n}", tracking_number=f"t-{n}"
            )
    all_orders = list(Order.objects.prefetch_related("items").order_by("-created_at", "-id"))

    for skip in (0, 50):
        # when a page of them is listed
        response = staff_client.get(ORDERS_URL, {"limit": 50, "skip": skip})

        # then its bytes are those of the serializer's generic walk over the same orders
        assert response.status_code == 200
        body = response.json()
        page = all_orders[skip : skip + 50]
        generic = [_generic(OrderSerializer(order), order) for order in page]
        expected = JSONRenderer().render({**body, "data": generic})
        assert response.content == expected
        assert len(body["data"]) == len(page)


def test_one_orders_read_answers_the_bytes_drfs_generic_walk_gives_for_it(staff_client):
    # given orders in every state, with 0 to 3 items, varied optional fields, and a customer the
    # user cache knows for some of them
    statuses = list(OrderStatus)
    for n in range(8):
        order = OrderFactory.create(
            status=statuses[n % len(statuses)],
            user_id=cached_user(name=f"Ada {n} ☃", email=f"ada{n}@example.com") if n % 2 else f"unknown-{n}",
            items=ItemInputFactory.build_batch(n % 4),
            shipping_address="" if n % 3 == 0 else f"{n} Straße",
        )
        if n % 3 == 1:
            Order.objects.filter(pk=order.pk).update(
                estimated_delivery=dt.date(2026, 12, n + 1), payment_id=f"pay-{n}", carrier="DHL"
            )

    for order in Order.objects.prefetch_related("items"):
        # when staff read it
        response = staff_client.get(order_url(order.id))

        # then its bytes are those of the detail serializer's generic walk, the customer included
        serializer = OrderDetailSerializer(order, context={"customer": users_cache.user_get(user_id=order.user_id)})
        assert response.status_code == 200
        assert response.content == JSONRenderer().render(_generic(serializer, order))


def test_a_cancel_answers_the_bytes_drfs_generic_walk_gives_for_the_cancelled_order(staff_client):
    # given a confirmed order with items
    order = OrderFactory.create(status=OrderStatus.CONFIRMED, items=ItemInputFactory.build_batch(2))

    # when it is cancelled
    response = staff_client.post(order_url(order.id, "cancel"), {"reason": "changed my mind"}, format="json")

    # then the answer is the order serializer's generic walk over the cancelled order
    cancelled = Order.objects.prefetch_related("items").get(pk=order.pk)
    assert (response.status_code, cancelled.status) == (200, OrderStatus.CANCELLED)
    assert response.content == JSONRenderer().render(_generic(OrderSerializer(cancelled), cancelled))
