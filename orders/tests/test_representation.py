"""The order serializers' hand-written representation equals what DRF's generic walk gives.

OrderSerializer.to_representation is written out field by field for speed (list
pages represent 100 orders); these tests hold it to ModelSerializer's own output
for orders in every state, so a field added to Meta.fields, or a format changed in
settings, cannot silently differ between the two.
"""

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework import serializers

from orders.api.serializers import OrderDetailSerializer, OrderSerializer
from orders.models import Order, OrderStatus
from orders.services import ItemInput
from orders.tests.factories import OrderFactory

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
