"""Reads of orders, always scoped to what the caller may see."""

import uuid
from typing import Any

from django.db.models import Prefetch

from orders.models import Order, OrderItem, OrderQuerySet, OrderStatusChange


def order_list(*, user: Any) -> OrderQuerySet:
    """Orders the caller may see, newest first, with items loaded in one query."""
    return (
        Order.objects.visible_to(user)
        .prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))
        .order_by("-created_at", "-id")
    )


def order_get(*, user: Any, order_id: uuid.UUID) -> Order:
    """One order the caller may see; Order.DoesNotExist otherwise (also for others' orders)."""
    return order_list(user=user).get(pk=order_id)


def order_history(*, order: Order) -> list[OrderStatusChange]:
    return list(order.history.order_by("order_version"))
