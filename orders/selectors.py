"""Reads of orders, always scoped to what the caller may see."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from orders.models import ApiClient, Order, OrderItem, OrderQuerySet, OrderStatusChange
from orders_project.errors import ServiceUnavailableError
from users_cache import services as users_cache


@dataclass(frozen=True)
class ClientScope:
    """The customers an API client may act for: all of them, one, or none."""

    any_customer: bool
    customer_id: str | None = None  # the one customer of a bound client

    def covers(self, user_id: str) -> bool:
        return self.any_customer or (self.customer_id is not None and user_id == self.customer_id)


def client_scope(*, user: Any) -> ClientScope:
    """Staff and clients with `orders.act_for_any_customer` act for every customer;
    a client bound by an ApiClient row for its customer only; any other for nobody."""
    if user.is_staff or user.has_perm("orders.act_for_any_customer"):
        return ClientScope(any_customer=True)
    customer_id = ApiClient.objects.filter(user_id=user.pk).values_list("customer_id", flat=True).first()
    return ClientScope(any_customer=False, customer_id=customer_id)


def order_list(*, user: Any) -> OrderQuerySet:
    """Orders of the customers the caller acts for, newest first, items loaded in one query."""
    scope = client_scope(user=user)
    orders = Order.objects.all() if scope.any_customer else Order.objects.of_customer(scope.customer_id)
    return orders.prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id"))).order_by(
        "-created_at", "-id"
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
