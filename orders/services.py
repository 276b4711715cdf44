"""Writes to orders by clients and staff. Each function is one transaction: the order
change, its history row and its outbox event commit together or not at all.

The other writes, each one transaction too, live beside the work they belong to:
the automatic confirm and ship (orders/lifecycle.py, set-based SQL per batch),
events sent again (orders/replay.py, through outbox.services.events_replay), and
Idempotency-Keys (orders/idempotency.py: `idempotent` holds the transaction of a
create sent with a key and writes the key's row last; their purge)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from orders.events import order_cancelled_data, order_created_data
from orders.metrics import orders_created_count, transitions_count, user_validation
from orders.models import CENTS, Order, OrderItem, OrderStatus, OrderStatusChange
from orders.transitions import InvalidTransition, transition_check
from orders_project.errors import DomainError, ServiceUnavailableError
from outbox.services import EventSpec, event_enqueue, events_insert_sql
from users_cache import services as users_cache


class UserNotFound(DomainError):
    code = "user_not_found"


class UserInactive(DomainError):
    code = "user_inactive"


@dataclass(frozen=True)
class ItemInput:
    product_id: str
    quantity: int
    price: Decimal


def items_total(items: list[ItemInput]) -> Decimal:
    return sum((item.price * item.quantity for item in items), Decimal("0.00"))


def _customer_verdict(*, user_id: str) -> str:
    user = users_cache.user_get(user_id=user_id)
    if user is None:
        return "not_found" if settings.ORDER_REQUIRE_KNOWN_USER else "unknown"
    if user.deleted:
        return "deleted"
    return "inactive" if user.status == "inactive" else "valid"


_REFUSALS: dict[str, tuple[type[DomainError], str]] = {
    "not_found": (UserNotFound, "User {user_id!r} is not known to this service."),
    "deleted": (UserNotFound, "User {user_id!r} has been deleted."),
    "inactive": (UserInactive, "User {user_id!r} is inactive; only active users can order."),
}


def order_customer_check(*, user_id: str) -> None:
    """Refuse orders for users the user cache marks unknown, inactive or deleted,
    counting the outcome in user_validation_total.

    order_create calls it under the customer's lock (see there). Redis down raises
    ServiceUnavailableError (503), never a misleading "not found".
    """
    try:
        verdict = _customer_verdict(user_id=user_id)
    except ServiceUnavailableError:
        user_validation.labels(result="unavailable").inc()
        raise
    user_validation.labels(result=verdict).inc()
    if verdict in _REFUSALS:
        error, message = _REFUSALS[verdict]
        raise error(message.format(user_id=user_id))


# First argument of the two-key advisory lock on a customer (the outbox relay uses
# another): keeps these locks apart from any other advisory-lock user.
CUSTOMER_LOCK_NAMESPACE = 0x0C57


def _customer_lock_shared(*, user_id: str) -> None:
    """Take the customer's advisory lock, shared, until the end of the current transaction.

    Creates take it shared (they never wait for each other); the cancel of a
    deleted user's orders takes it exclusive (orders_open_of_deleted_users),
    which waits until every create that might have checked the user before its
    tombstone was written commits.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))", [CUSTOMER_LOCK_NAMESPACE, user_id])


@dataclass(frozen=True)
class OrderInput:
    user_id: str
    currency: str
    items: list[ItemInput]
    shipping_address: str = ""


# savepoint=False: inside the transaction of `idempotent` (which also stores the response
# under the Idempotency-Key) a savepoint pair is two round trips that buy nothing, since
# any error here fails the whole request. Called alone, it is its own transaction.
@transaction.atomic(savepoint=False)
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
    """Create a pending order with its items, its first history row and `order.created`.

    Checks the customer under the customer's shared lock, held until commit:
    a user.deleted whose tombstone lands after this check waits for the commit
    and then cancels the order; one that landed before is seen here. The Redis
    read happens inside the transaction, which holds no row yet, only the lock;
    a refused order costs a BEGIN, the lock and a ROLLBACK. (The API checked
    once before the transaction too, until profiling showed that second Redis
    round trip at ~4 % of a create's CPU.)
    Raises UserNotFound / UserInactive / ServiceUnavailableError.
    """
    _customer_lock_shared(user_id=user_id)
    order_customer_check(user_id=user_id)
    spec = OrderInput(user_id=user_id, currency=currency, items=items, shipping_address=shipping_address)
    return orders_create(orders=[spec], created_by_id=created_by_id, changed_by=changed_by, traceparent=traceparent)[0]


# The orders, their items, their first history rows and their events in one statement: the
# inserts are data-modifying CTEs, so the whole create is one round trip, and PostgreSQL
# checks the items' and history rows' foreign keys at the statement's end, when the orders
# are there. Items get ids in list order (the rows come out of unnest in order), returned
# sorted. Built as SQL with arrays: the ORM's four bulk_create INSERTs were ~30 % of an API
# create's CPU, most of it Django building and quoting each statement.
_CREATE_SQL = f"""
WITH new_orders AS (
    INSERT INTO {Order._meta.db_table} (id, user_id, created_by_id, status, currency, total_amount,
        shipping_address, payment_id, tracking_number, carrier, cancel_reason, version, created_at, updated_at)
    SELECT id, user_id, %(created_by_id)s, %(status)s, currency, total_amount, shipping_address, '', '', '', '',
        1, %(now)s, %(now)s
    FROM unnest(%(order_ids)s::uuid[], %(user_ids)s::text[], %(currencies)s::text[], %(totals)s::numeric[],
        %(addresses)s::text[]) AS o (id, user_id, currency, total_amount, shipping_address)
), new_history AS (
    INSERT INTO {OrderStatusChange._meta.db_table} (order_id, order_version, from_status, to_status, changed_at,
        changed_by, reason)
    SELECT id, 1, '', %(status)s, %(now)s, %(changed_by)s, '' FROM unnest(%(order_ids)s::uuid[]) AS o (id)
), new_events AS (
{{events}}
), new_items AS (
    INSERT INTO {OrderItem._meta.db_table} (order_id, product_id, quantity, price)
    SELECT * FROM unnest(%(item_order_ids)s::uuid[], %(item_products)s::text[], %(item_quantities)s::integer[],
        %(item_prices)s::numeric[])
    RETURNING id
)
SELECT id FROM new_items ORDER BY id
"""


@transaction.atomic(savepoint=False)
def orders_create(
    *,
    orders: list[OrderInput],
    created_by_id: int | None = None,
    changed_by: str,
    traceparent: str | None = None,
) -> list[Order]:
    """Create pending orders in one transaction, with one statement (bulk loads, benchmarks).

    Does not check the customers (order_create does, for single orders)."""
    now = timezone.now()
    created: list[Order] = []
    items: list[OrderItem] = []
    for spec in orders:
        order = Order(
            id=uuid.uuid4(),
            user_id=spec.user_id,
            currency=spec.currency,
            total_amount=items_total(spec.items).quantize(CENTS),
            shipping_address=spec.shipping_address,
            created_by_id=created_by_id,
            status=OrderStatus.PENDING,
            version=1,
            created_at=now,
            updated_at=now,
        )
        # The rows hold what is inserted (prices and totals as the columns store them, 2 places):
        # the events and the API answer are built from them, with no read back.
        order.item_list = [
            OrderItem(order=order, product_id=item.product_id, quantity=item.quantity, price=item.price.quantize(CENTS))
            for item in spec.items
        ]
        created.append(order)
        items.extend(order.item_list)
    events_sql, params = events_insert_sql(
        events=[EventSpec("order.created", order.user_id, order_created_data(order)) for order in created],
        traceparent=traceparent,
    )
    params |= {
        "created_by_id": created_by_id,
        "status": OrderStatus.PENDING.value,
        "now": now,
        "changed_by": changed_by,
        "order_ids": [order.id for order in created],
        "user_ids": [order.user_id for order in created],
        "currencies": [order.currency for order in created],
        "totals": [order.total_amount for order in created],
        "addresses": [order.shipping_address for order in created],
        "item_order_ids": [item.order_id for item in items],
        "item_products": [item.product_id for item in items],
        "item_quantities": [item.quantity for item in items],
        "item_prices": [item.price for item in items],
    }
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_SQL.format(events=events_sql), params)
        item_ids = [row[0] for row in cursor.fetchall()]
    for instance, pk in zip([*created, *items], [*(order.id for order in created), *item_ids], strict=True):
        instance.pk = pk
        instance._state.adding = False  # as bulk_create leaves them: saved, in this database
        instance._state.db = connection.alias
    orders_created_count(len(created))
    return created


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
    transitions_count(from_status=from_status, to_status=OrderStatus.CANCELLED)
    return order


def orders_open_of_deleted_users(*, user_ids: Sequence[str]) -> dict[str, list[uuid.UUID]]:
    """The pending and confirmed orders of customers whose tombstones are stored, by customer
    (customers without any are left out). Two statements, however many customers.

    The caller wrote the users' tombstones first. Waiting for each customer's
    exclusive lock waits for every create that checked the user before its
    tombstone to commit, so the query sees those orders; later creates see the
    tombstone. The locks are taken in one statement, in the order of their keys
    (two consumers locking overlapping sets cannot deadlock), and released as
    soon as they are all granted: outside a transaction the statement is its own.
    The query is a statement of its own after it, so its snapshot is taken once
    those creates have committed. Plain SQL: most deleted users have no open
    order, and building a queryset was half the CPU of a delete's cancel.
    It reads the users' rows from order_user_created_idx (user_id first).
    """
    if not user_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, key)"
            " FROM (SELECT DISTINCT hashtext(u) AS key FROM unnest(%s::text[]) AS u ORDER BY 1) AS keys",
            [CUSTOMER_LOCK_NAMESPACE, list(user_ids)],
        )
        cursor.execute(
            f"SELECT user_id, id FROM {Order._meta.db_table} WHERE user_id = ANY(%s) AND status IN (%s, %s)",
            [list(user_ids), OrderStatus.PENDING.value, OrderStatus.CONFIRMED.value],
        )
        rows = cursor.fetchall()
    open_orders: dict[str, list[uuid.UUID]] = {}
    for user_id, order_id in rows:
        open_orders.setdefault(user_id, []).append(order_id)
    return open_orders


def orders_cancel(*, order_ids: Sequence[uuid.UUID], reason: str, changed_by: str) -> int:
    """Cancel these orders, each in its own transaction; how many were cancelled (an order
    shipped or cancelled since it was found is left alone)."""
    cancelled = 0
    for order_id in order_ids:
        try:
            order_cancel(order_id=order_id, reason=reason, changed_by=changed_by)
        except InvalidTransition:
            continue  # shipped (or cancelled) between the query and the lock
        cancelled += 1
    return cancelled
