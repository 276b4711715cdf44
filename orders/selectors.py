"""Reads of orders, always scoped to what the caller may see."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncMinute

from orders.listing import OrderListFilters, OrderListing
from orders.models import ApiClient, Order, OrderQuerySet, OrderStatus, OrderStatusChange
from orders_project.counting import count_bounded
from orders_project.errors import ServiceUnavailableError
from outbox.models import OutboxEvent
from users_cache import services as users_cache


@dataclass(frozen=True)
class ClientScope:
    """The customers an API client may act for (all of them, one, or none), and whether it
    sees their name and email on an order."""

    any_customer: bool
    customer_id: str | None = None  # the one customer of a bound client
    customer_pii: bool = False  # staff, or `orders.view_customer_pii`

    def covers(self, user_id: str) -> bool:
        return self.any_customer or (self.customer_id is not None and user_id == self.customer_id)


# Where authentication leaves the scope it loaded with the token (one query for both), and
# client_scope the one it read for any other user (a session's): the user object lives for
# one request, so the scope is as fresh as the token or the session (as has_perm's cache).
SCOPE_ATTRIBUTE = "orders_client_scope"


# Codenames (app `orders`) of the permissions the scope holds.
_ANY_CUSTOMER_PERMISSION = "act_for_any_customer"
_CUSTOMER_PII_PERMISSION = "view_customer_pii"


def _permission_held_sql(*, codename: str, user_column: str) -> tuple[str, list[str]]:
    """An SQL boolean: the user `user_column` holds orders.`codename`, directly or through a
    group (as ModelBackend sees it, leaving is_active and is_superuser to the caller). Two
    EXISTS, not one over an OR of joins, so each uses its index."""
    user_model = get_user_model()
    user_permissions = user_model.user_permissions.through._meta.db_table
    user_groups = user_model.groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    permission_of = (
        f"JOIN {Permission._meta.db_table} p ON p.id = x.permission_id"
        f" JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id"
        " WHERE p.codename = %s AND ct.app_label = %s"
    )
    sql = (
        f"(EXISTS (SELECT 1 FROM {user_permissions} x {permission_of} AND x.user_id = {user_column})"
        f" OR EXISTS (SELECT 1 FROM {user_groups} g JOIN {group_permissions} x ON x.group_id = g.group_id"
        f" {permission_of} AND g.user_id = {user_column}))"
    )
    return sql, [codename, "orders", codename, "orders"]


def client_scope_sql(*, user_column: str) -> tuple[str, list[str]]:
    """Three SQL columns, (any_customer, customer_pii, customer_id), for the client whose user
    id is `user_column` in the surrounding query, and their parameters.

    any_customer and customer_pii: the user holds `orders.act_for_any_customer` and
    `orders.view_customer_pii`; customer_id: its ApiClient binding, or NULL.
    Plain SQL because it runs on every API request (in the token lookup): the ORM
    took ~2.7 ms to compile the same query on these machines, more than the query.
    """
    any_customer, any_params = _permission_held_sql(codename=_ANY_CUSTOMER_PERMISSION, user_column=user_column)
    pii, pii_params = _permission_held_sql(codename=_CUSTOMER_PII_PERMISSION, user_column=user_column)
    binding = f"(SELECT customer_id FROM {ApiClient._meta.db_table} WHERE user_id = {user_column})"
    return f"{any_customer}, {pii}, {binding}", [*any_params, *pii_params]


def client_scope_of(*, user: Any, any_customer: bool, customer_pii: bool, customer_id: str | None) -> ClientScope:
    """The scope from the columns of client_scope_sql(). Staff, and active superusers, have
    it all; an inactive user holds no permission (as with has_perm)."""
    if user.is_staff or (user.is_active and user.is_superuser):
        return ClientScope(any_customer=True, customer_pii=True)
    if not user.is_active:
        return ClientScope(any_customer=False, customer_id=customer_id)
    if any_customer:
        return ClientScope(any_customer=True, customer_pii=customer_pii)
    return ClientScope(any_customer=False, customer_id=customer_id, customer_pii=customer_pii)


def client_scope(*, user: Any) -> ClientScope:
    """Staff and clients with `orders.act_for_any_customer` act for every customer;
    a client bound by an ApiClient row for its customer only; any other for nobody.

    Token authentication loads it with the token (orders.api.authentication); otherwise
    one query for the permissions and the binding together (through has_perm it took three),
    kept on the user for the rest of the request (a read checks it for its rows and its PII).
    """
    loaded: ClientScope | None = getattr(user, SCOPE_ATTRIBUTE, None)
    if loaded is not None:
        return loaded
    if user.is_staff or (user.is_active and user.is_superuser):
        return ClientScope(any_customer=True, customer_pii=True)
    columns, params = client_scope_sql(user_column="client.id")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM (SELECT %s AS id) client", [*params, user.pk])
        any_customer, customer_pii, customer_id = cursor.fetchone()
    scope = client_scope_of(user=user, any_customer=any_customer, customer_pii=customer_pii, customer_id=customer_id)
    setattr(user, SCOPE_ATTRIBUTE, scope)
    return scope


def order_list(*, user: Any) -> OrderQuerySet:
    """Orders of the customers the caller acts for, newest first (a single order's reads)."""
    scope = client_scope(user=user)
    orders = Order.objects.all() if scope.any_customer else Order.objects.of_customer(scope.customer_id)
    return orders.order_by("-created_at", "-id")


def order_listing(*, user: Any, filters: OrderListFilters) -> OrderListing:
    """The list endpoint's orders: those of the customers the caller acts for, filtered, newest
    first, paged in plain SQL in their API representation (orders.listing says why)."""
    scope = client_scope(user=user)
    return OrderListing(customer_id=scope.customer_id, any_customer=scope.any_customer, filters=filters)


def order_get(*, user: Any, order_id: uuid.UUID) -> Order:
    """One order the caller may see; Order.DoesNotExist otherwise (also for others' orders)."""
    return order_list(user=user).get(pk=order_id)


def order_represented(*, user: Any, order_id: uuid.UUID) -> dict[str, Any]:
    """One order the caller may see in OrderSerializer's representation, read in plain SQL as a
    list page is (two statements: the order, its items); Order.DoesNotExist otherwise. Through
    order_get, the items' query and the serializer, a read spent about half its CPU there."""
    page = order_listing(user=user, filters=OrderListFilters(order_id=order_id)).rows(skip=0, limit=1, after=None)
    if not page:
        raise Order.DoesNotExist
    return page[0]


def order_visible(*, user: Any, order_id: uuid.UUID) -> bool:
    """Whether the caller may see this order: one statement, with no queryset to compile."""
    return order_listing(user=user, filters=OrderListFilters(order_id=order_id)).count_bounded(limit=1) > 0


def order_history(*, order: Order) -> list[OrderStatusChange]:
    return list(order.history.order_by("order_version"))


def order_customer(*, user_id: str) -> users_cache.CachedUser | None:
    """An order's customer as the user cache knows them; None if unknown or the cache is down
    (a read must not fail because of the cache)."""
    try:
        return users_cache.user_get(user_id=user_id)
    except ServiceUnavailableError:
        return None


# --- staff views (the admin's order page, the operations page) ---

# An order has at most three events of its own; replays can add a few more. Bounded anyway.
ORDER_EVENTS_LIMIT = 50


def order_events(*, order: Order, limit: int = ORDER_EVENTS_LIMIT) -> list[OutboxEvent]:
    """The outbox rows of this order's events (payload data.order_id), oldest first.

    Served by the expression index orders/migrations/0005 puts on the outbox table;
    rows the outbox retention already dropped (published, past retention) are gone."""
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


def orders_existing(*, order_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these orders exist (after a database restore, some on Kafka do not)."""
    found: set[uuid.UUID] = set()
    # Chunks keep each IN list (and its plan) small on a large reconcile.
    for start in range(0, len(order_ids), 1000):
        found.update(Order.objects.filter(id__in=order_ids[start : start + 1000]).values_list("id", flat=True))
    return found
