"""Reads of orders, always scoped to what the caller may see."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import TruncMinute

from orders.models import ApiClient, Order, OrderItem, OrderQuerySet, OrderStatus, OrderStatusChange
from orders_project.counting import count_bounded
from orders_project.errors import ServiceUnavailableError
from outbox.models import OutboxEvent
from users_cache import services as users_cache


@dataclass(frozen=True)
class ClientScope:
    """The customers an API client may act for: all of them, one, or none."""

    any_customer: bool
    customer_id: str | None = None  # the one customer of a bound client

    def covers(self, user_id: str) -> bool:
        return self.any_customer or (self.customer_id is not None and user_id == self.customer_id)


# Where authentication leaves the scope it loaded with the token (one query for both):
# the user object lives for one request, so the scope is as fresh as the token.
SCOPE_ATTRIBUTE = "orders_client_scope"


def client_scope_columns(*, user_ref: str) -> tuple[Exists, Subquery]:
    """The columns client_scope() needs, annotated as scope_any_customer and scope_customer_id
    on a query whose `user_ref` is the client's user id (`pk` on users, `user_id` on tokens):
    whether the user holds `orders.act_for_any_customer` (given directly or through a group,
    as ModelBackend sees it) and its ApiClient binding."""
    granted = Permission.objects.filter(
        Q(user=OuterRef(user_ref)) | Q(group__user=OuterRef(user_ref)),
        content_type__app_label="orders",
        codename="act_for_any_customer",
    )
    bound = ApiClient.objects.filter(user_id=OuterRef(user_ref)).values("customer_id")[:1]
    return Exists(granted), Subquery(bound)


def client_scope_of(*, user: Any, any_customer: bool, customer_id: str | None) -> ClientScope:
    """The scope from the columns of client_scope_columns()."""
    if user.is_staff or (user.is_active and (user.is_superuser or any_customer)):
        return ClientScope(any_customer=True)
    return ClientScope(any_customer=False, customer_id=customer_id)


def client_scope(*, user: Any) -> ClientScope:
    """Staff and clients with `orders.act_for_any_customer` act for every customer;
    a client bound by an ApiClient row for its customer only; any other for nobody.

    Token authentication loads it with the token (orders.api.authentication); otherwise
    one query for permission and binding together (through has_perm it took three).
    """
    loaded: ClientScope | None = getattr(user, SCOPE_ATTRIBUTE, None)
    if loaded is not None:
        return loaded
    if user.is_staff or (user.is_active and user.is_superuser):
        return ClientScope(any_customer=True)
    granted, bound = client_scope_columns(user_ref="pk")
    any_customer, customer_id = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(scope_any_customer=granted, scope_customer_id=bound)
        .values_list("scope_any_customer", "scope_customer_id")
        .get()
    )
    return client_scope_of(user=user, any_customer=any_customer, customer_id=customer_id)


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


# --- staff views (the admin's order page, the operations page) ---

# An order has at most three events of its own; replays can add a few more. Bounded anyway.
ORDER_EVENTS_LIMIT = 50


def order_events(*, order: Order, limit: int = ORDER_EVENTS_LIMIT) -> list[OutboxEvent]:
    """The outbox rows of this order's events (payload data.order_id), oldest first.

    Served by the expression index orders/migrations/0005 puts on the outbox table;
    rows the outbox cleanup already deleted (published, past retention) are gone."""
    rows = OutboxEvent.objects.filter(payload__data__order_id=str(order.id)).order_by("id")
    return list(rows[:limit])


@dataclass(frozen=True)
class OrdersDue:
    """Orders the lifecycle processor should already have moved (orders.lifecycle)."""

    to_confirm: int  # pending for longer than ORDER_CONFIRM_DELAY
    to_ship: int  # confirmed for longer than ORDER_SHIP_DELAY


def orders_due(*, now: datetime) -> OrdersDue:
    """Bounded counts (count_bounded) through the (status, created_at) index."""
    confirm_before = now - timedelta(seconds=settings.ORDER_CONFIRM_DELAY)
    ship_before = now - timedelta(seconds=settings.ORDER_SHIP_DELAY)
    return OrdersDue(
        to_confirm=count_bounded(Order.objects.filter(status=OrderStatus.PENDING, created_at__lte=confirm_before)),
        to_ship=count_bounded(Order.objects.filter(status=OrderStatus.CONFIRMED, confirmed_at__lte=ship_before)),
    )


def orders_created_per_minute(*, since: datetime) -> dict[datetime, int]:
    """Orders created since `since`, per minute (UTC, truncated): one range scan of the
    created_at index, grouped; minutes without orders are absent."""
    rows = (
        Order.objects.filter(created_at__gte=since)
        .annotate(minute=TruncMinute("created_at"))
        .order_by()
        .values("minute")
        .annotate(count=Count("id"))
        .values_list("minute", "count")
    )
    return dict(rows)
