"""Every write to orders. Each function is one transaction: the order change,
its history row and its outbox event commit together or not at all."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from orders.events import order_cancelled_data, order_created_data
from orders.models import Order, OrderItem, OrderStatus, OrderStatusChange
from orders.transitions import transition_check
from outbox.services import event_enqueue


@dataclass(frozen=True)
class ItemInput:
    product_id: str
    quantity: int
    price: Decimal


def items_total(items: list[ItemInput]) -> Decimal:
    return sum((item.price * item.quantity for item in items), Decimal("0.00"))


@transaction.atomic
def order_create(
    *,
    user_id: str,
    currency: str,
    items: list[ItemInput],
    shipping_address: str = "",
    created_by_id: int | None = None,
    changed_by: str,
    traceparent: str | None = None,
) -> Order:
    """Create a pending order with its items, its first history row and `order.created`."""
    now = timezone.now()
    order = Order.objects.create(
        user_id=user_id,
        currency=currency,
        total_amount=items_total(items),
        shipping_address=shipping_address,
        created_by_id=created_by_id,
        status=OrderStatus.PENDING,
        version=1,
        created_at=now,
        updated_at=now,
    )
    OrderItem.objects.bulk_create(
        OrderItem(order=order, product_id=item.product_id, quantity=item.quantity, price=item.price) for item in items
    )
    OrderStatusChange.objects.create(
        order=order,
        order_version=1,
        from_status="",
        to_status=OrderStatus.PENDING,
        changed_at=now,
        changed_by=changed_by,
    )
    event_enqueue(
        event_type="order.created", key=order.user_id, data=order_created_data(order), traceparent=traceparent
    )
    return order


@transaction.atomic
def order_cancel(*, order_id: uuid.UUID, reason: str, changed_by: str, traceparent: str | None = None) -> Order:
    """Cancel a pending or confirmed order.

    The row lock serialises this with a concurrent cancel and with the
    lifecycle processor: whoever locks second sees the new status and is
    refused by the transition table, so exactly one change (and one event) wins.
    Raises Order.DoesNotExist or InvalidTransition.
    """
    order = Order.objects.select_for_update().get(pk=order_id)
    transition_check(from_status=order.status, to_status=OrderStatus.CANCELLED)
    now = timezone.now()
    from_status = order.status
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = now
    order.cancel_reason = reason
    order.version += 1
    order.updated_at = now
    order.save(update_fields=["status", "cancelled_at", "cancel_reason", "version", "updated_at"])
    OrderStatusChange.objects.create(
        order=order,
        order_version=order.version,
        from_status=from_status,
        to_status=OrderStatus.CANCELLED,
        changed_at=now,
        changed_by=changed_by,
        reason=reason,
    )
    event_enqueue(
        event_type="order.cancelled", key=order.user_id, data=order_cancelled_data(order), traceparent=traceparent
    )
    return order
