"""Automatic order transitions driven by beat: confirm, then ship, on timers.

Each batch is one transaction with set-based SQL: lock due orders with
SELECT ... FOR UPDATE SKIP LOCKED, move them all and write their history rows
with one statement (an UPDATE and an INSERT from what it returned), their
events with one INSERT, commit. The locks are held until
that commit, so overlapping runs (a slow run and the next tick, or several
workers) skip each other's orders instead of moving them twice. A cancel locks
its row with a plain FOR UPDATE: if it holds the row, the batch skips it; if
the batch holds it, the cancel waits and then sees the new status.
(The service this replaces committed once per order inside one locked SELECT,
which released the other locks at the first commit and double-confirmed.)
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from orders.events import order_confirmed_data, order_shipped_data
from orders.metrics import transitions_count
from orders.models import Order, OrderStatus, OrderStatusChange
from orders.transitions import sources_of
from orders_project import tracing
from outbox.services import EventSpec, events_enqueue

logger = logging.getLogger(__name__)

# ~500 orders: one UPDATE, one history INSERT and one outbox INSERT of ~1 MB in
# all; a batch commits in tens of milliseconds, so cancels never wait long.
BATCH_SIZE = 500
# Bound on one run's work, so a backlog is worked off over several ticks.
MAX_BATCHES_PER_RUN = 20
CHANGED_BY = "system:lifecycle"
CARRIERS = ["UPS", "FedEx", "DHL", "USPS"]
DELIVERY_DAYS = 3

_ORDERS = Order._meta.db_table
_HISTORY = OrderStatusChange._meta.db_table


def _lock_due_sql(time_column: str) -> str:
    return f"""
SELECT id FROM {_ORDERS}
WHERE status = %(from_status)s AND {time_column} <= %(due_before)s
ORDER BY {time_column}, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""


# Each column is computed per row by PostgreSQL, and the history rows are written by the
# same statement from what the UPDATE returned: one round trip, no model objects for
# them, and the moved orders come back whole for their events (no second SELECT).
def _move_sql(set_columns: str) -> str:
    return f"""
WITH moved AS (
    UPDATE {_ORDERS} SET status = %(to_status)s, version = version + 1, updated_at = %(now)s,{set_columns}
    WHERE id = ANY(%(ids)s) AND status = ANY(%(sources)s)
    RETURNING *
), history AS (
    INSERT INTO {_HISTORY}
        (order_id, order_version, from_status, to_status, changed_at, changed_by, reason)
    SELECT id, version, %(from_status)s, %(to_status)s, %(now)s, %(changed_by)s, '' FROM moved
)
SELECT * FROM moved ORDER BY created_at, id
"""


_CONFIRM_SET = """
    confirmed_at = %(now)s, payment_id = 'pay_' || replace(gen_random_uuid()::text, '-', '')
"""

_SHIP_SET = """
    shipped_at = %(now)s,
    tracking_number = 'TRK' || upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)),
    carrier = (%(carriers)s::text[])[1 + floor(random() * %(carrier_count)s)::int],
    estimated_delivery = (%(now)s + make_interval(days => %(delivery_days)s))::date
"""


@dataclass(frozen=True)
class _Step:
    """One automatic step: its delay (a setting's name), its two statements and its event."""

    delay_setting: str
    lock_sql: str
    move_sql: str
    event_type: str
    event_data: Callable[[Order], dict[str, Any]]


# The statements are built once, here: the tables' names come from the models.
_STEPS = {
    OrderStatus.CONFIRMED: _Step(
        delay_setting="ORDER_CONFIRM_DELAY",
        lock_sql=_lock_due_sql("created_at"),
        move_sql=_move_sql(_CONFIRM_SET),
        event_type="order.confirmed",
        event_data=order_confirmed_data,
    ),
    OrderStatus.SHIPPED: _Step(
        delay_setting="ORDER_SHIP_DELAY",
        lock_sql=_lock_due_sql("confirmed_at"),
        move_sql=_move_sql(_SHIP_SET),
        event_type="order.shipped",
        event_data=order_shipped_data,
    ),
}


@dataclass
class AdvanceResult:
    confirmed: int = 0
    shipped: int = 0


def _advance_batch(*, from_status: str, to_status: str, limit: int) -> int:
    """Move one batch of due orders, in a span of its own; returns how many moved.

    The batch's events carry the span's traceparent (under the Celery task's span when
    tracing is on), so the relay and the consumers continue the batch's trace.
    """
    with tracing.span(f"orders.lifecycle {to_status}") as span:
        moved = _advance_batch_traced(from_status=from_status, to_status=to_status, limit=limit)
        if moved:
            span.set_attribute("orders.moved", moved)
            logger.info("Lifecycle batch: %d orders %s", moved, to_status)
    return moved


def _advance_batch_traced(*, from_status: str, to_status: str, limit: int) -> int:
    now = timezone.now()
    step = _STEPS[OrderStatus(to_status)]
    due_before = now - timedelta(seconds=getattr(settings, step.delay_setting))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(step.lock_sql, {"from_status": from_status, "due_before": due_before, "limit": limit})
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return 0
        params = {
            "ids": ids,
            "now": now,
            "sources": sources_of(to_status),
            "from_status": from_status,
            "to_status": to_status,
            "changed_by": CHANGED_BY,
            "carriers": CARRIERS,
            "carrier_count": len(CARRIERS),
            "delivery_days": DELIVERY_DAYS,
        }
        orders = list(Order.objects.raw(step.move_sql, params))
        events_enqueue(events=[EventSpec(step.event_type, order.user_id, step.event_data(order)) for order in orders])
        transitions_count(from_status=from_status, to_status=to_status, count=len(orders))
    return len(orders)


def orders_advance(*, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES_PER_RUN) -> AdvanceResult:
    """Confirm due pending orders, then ship due confirmed ones, in bounded batches."""
    result = AdvanceResult()
    for _ in range(max_batches):
        moved = _advance_batch(from_status=OrderStatus.PENDING, to_status=OrderStatus.CONFIRMED, limit=batch_size)
        result.confirmed += moved
        if moved < batch_size:
            break
    for _ in range(max_batches):
        moved = _advance_batch(from_status=OrderStatus.CONFIRMED, to_status=OrderStatus.SHIPPED, limit=batch_size)
        result.shipped += moved
        if moved < batch_size:
            break
    if result.confirmed or result.shipped:
        logger.info("Lifecycle: %d confirmed, %d shipped", result.confirmed, result.shipped)
    return result
