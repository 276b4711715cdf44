"""Reads of orders, always scoped to what the caller may see."""

import uuid
from typing import Any

from django.db.models import Prefetch

from orders.models import Order, OrderItem, OrderQuerySet, OrderStatusChange
from orders_project.errors import ServiceUnavailableError
from users_cache import services as users_cache


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


def order_customer(*, order: Order) -> users_cache.CachedUser | None:
    """The customer as the user cache knows them; None if unknown or the cache is down
    (a read must not fail because of the cache)."""
    try:
        return users_cache.user_get(user_id=order.user_id)
    except ServiceUnavailableError:
        return None
