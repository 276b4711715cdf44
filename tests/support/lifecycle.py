"""Helpers for the lifecycle tests: many due orders fast, a clock that moves, threads, invariants."""

import itertools
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F

from devstack import threads as parallel
from devstack.bench.lifecycle import orders_bulk_create
from orders.models import Order, OrderStatus, OrderStatusChange
from orders.services import ItemInput, order_create
from orders.transitions import ALLOWED_TRANSITIONS
from outbox.models import OutboxEvent

EVENT_OF = {
    OrderStatus.PENDING: "order.created",
    OrderStatus.CONFIRMED: "order.confirmed",
    OrderStatus.SHIPPED: "order.shipped",
    OrderStatus.CANCELLED: "order.cancelled",
}
STAMP_OF = {
    OrderStatus.CONFIRMED: "confirmed_at",
    OrderStatus.SHIPPED: "shipped_at",
    OrderStatus.CANCELLED: "cancelled_at",
}
THREAD_TIMEOUT = 60


def order_new(user_id: str = "user-1") -> Order:
    """One order through the real service, as the API creates it."""
    return order_create(
        user_id=user_id,
        currency="USD",
        items=[ItemInput(product_id="prod-1", quantity=2, price=Decimal("9.99"))],
        shipping_address="1 Test Street",
        changed_by="system:test",
    )


def orders_many(count: int) -> list[uuid.UUID]:
    """`count` pending orders with items, history and `order.created`, oldest first."""
    ids = orders_bulk_create(count, user_prefix="bulk-user-", changed_by="system:test")
    return list(Order.objects.filter(id__in=ids).order_by("created_at", "id").values_list("id", flat=True))


def clock_advance(seconds: int) -> None:
    """Make `seconds` pass for every order without sleeping.

    The processor compares the stored timestamps with `timezone.now()`, so
    moving every stored time back by the same amount is the same as the clock
    moving forward: due-ness changes while every timestamp still equals the
    changed_at of the history row that set it.
    """
    delta = timedelta(seconds=seconds)
    Order.objects.update(
        created_at=F("created_at") - delta,
        updated_at=F("updated_at") - delta,
        confirmed_at=F("confirmed_at") - delta,
        shipped_at=F("shipped_at") - delta,
        cancelled_at=F("cancelled_at") - delta,
    )
    OrderStatusChange.objects.update(changed_at=F("changed_at") - delta)


def run_in_threads(functions: Iterable[Callable[[], Any]]) -> list[Any]:
    """Start each function in its own thread (own DB connection) at one barrier; their results in order."""
    results, _ = parallel.run_in_threads(functions, timeout=THREAD_TIMEOUT)
    return results


def histories() -> dict[uuid.UUID, list[tuple[str, str]]]:
    """Every order's (from_status, to_status) chain, in version order."""
    chains: dict[uuid.UUID, list[tuple[str, str]]] = defaultdict(list)
    rows = OrderStatusChange.objects.order_by("order_id", "order_version").values_list(
        "order_id", "from_status", "to_status"
    )
    for order_id, from_status, to_status in rows:
        chains[order_id].append((from_status, to_status))
    return dict(chains)


def lifecycle_violations() -> list[str]:
    """Every broken invariant over all orders, as readable lines; [] when all hold.

    History is a chain of allowed transitions starting with creation; version
    equals the number of history rows; each timestamp is set exactly when its
    status was reached (and equals that row's changed_at); the outbox holds
    exactly one event per history row, of the matching type, written in
    version order, keyed by the customer.
    """
    problems: list[str] = []
    history: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in OrderStatusChange.objects.order_by("order_id", "order_version").values():
        history[row["order_id"]].append(row)
    events: dict[str, list[tuple[str, str, int, str]]] = defaultdict(list)
    for event_type, key, data in (
        OutboxEvent.objects.filter(event_type__startswith="order.")
        .order_by("id")
        .values_list("event_type", "key", "payload__data")
    ):
        events[data["order_id"]].append((event_type, key, data["order_version"], data["status"]))
    orders: list[Any] = list(Order.objects.values())
    for order in orders:
        oid, rows = order["id"], history.get(order["id"], [])
        chain = [(row["from_status"], row["to_status"]) for row in rows]
        if [row["order_version"] for row in rows] != list(range(1, order["version"] + 1)):
            problems.append(f"{oid}: version {order['version']} vs history versions {chain}")
        if not chain or chain[0] != ("", OrderStatus.PENDING):
            problems.append(f"{oid}: history does not start with creation: {chain}")
            continue
        for (_, previous_to), (from_status, to_status) in itertools.pairwise(chain):
            if from_status != previous_to or to_status not in ALLOWED_TRANSITIONS[from_status]:
                problems.append(f"{oid}: bad step {from_status}->{to_status} after {previous_to}: {chain}")
        if order["status"] != chain[-1][1]:
            problems.append(f"{oid}: status {order['status']} but history ends {chain[-1]}")
        if order["created_at"] != rows[0]["changed_at"]:
            problems.append(f"{oid}: created_at differs from its creation row")
        reached = {row["to_status"]: row["changed_at"] for row in rows}
        for status, stamp in STAMP_OF.items():
            if order[stamp] != reached.get(status):
                problems.append(f"{oid}: {stamp}={order[stamp]} but {status} reached at {reached.get(status)}")
        if bool(order["payment_id"]) != (OrderStatus.CONFIRMED in reached):
            problems.append(f"{oid}: payment_id {order['payment_id']!r} with history {chain}")
        if bool(order["tracking_number"] and order["carrier"]) != (OrderStatus.SHIPPED in reached):
            problems.append(f"{oid}: tracking {order['tracking_number']!r}/{order['carrier']!r} with {chain}")
        expected = [
            (EVENT_OF[row["to_status"]], order["user_id"], row["order_version"], row["to_status"]) for row in rows
        ]
        got = events.pop(str(oid), [])
        if got != expected:
            problems.append(f"{oid}: events {got} but history {chain}")
    problems.extend(f"{order_id}: events for no order" for order_id in events)
    return problems
