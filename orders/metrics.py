"""Metrics of orders: creations, status transitions, customer checks, and how far the lifecycle is behind.

Counters move when the change commits (a rolled-back order counts nothing), in the
process that made it: web for creations, cancels and checks, the worker for the
lifecycle's transitions. lifecycle_oldest_due_age_seconds needs a query: the worker
serves it, computed at most every few seconds (orders_project/celery_metrics.py).
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from orders.models import Order, OrderStatus
from orders_project.metrics import CachedQueryCollector

orders_created = Counter("orders_created_total", "Orders created (committed)")
order_transitions = Counter(
    "order_transitions_total",
    "Order status changes (committed): pending->confirmed->shipped by the lifecycle, ->cancelled by clients",
    ["from_status", "to_status"],
)
user_validation = Counter(
    "user_validation_total",
    "Customer checks of order creation against the user cache: "
    "valid, unknown (allowed), not_found, deleted, inactive, unavailable (Redis down)",
    ["result"],
)


def orders_created_count(count: int) -> None:
    """Count `count` created orders when the current transaction commits."""
    transaction.on_commit(lambda: orders_created.inc(count))


def transitions_count(*, from_status: str, to_status: str, count: int = 1) -> None:
    """Count `count` transitions when the current transaction commits."""
    if count:
        transaction.on_commit(lambda: order_transitions.labels(from_status=from_status, to_status=to_status).inc(count))


_DUE = (
    "lifecycle_oldest_due_age_seconds",
    "How long the most overdue order has been due for its next automatic step (0 if none is due)",
)


def _describe() -> list[Metric]:
    return [GaugeMetricFamily(*_DUE)]


# Two MIN()s that PostgreSQL answers from the (status, created_at) index and from the
# confirmed orders (those of the last ORDER_SHIP_DELAY seconds, normally), in one statement.
_OLDEST_SQL = f"""
SELECT (SELECT min(created_at) FROM {Order._meta.db_table} WHERE status = %(pending)s),
       (SELECT min(confirmed_at) FROM {Order._meta.db_table} WHERE status = %(confirmed)s)
"""


def _compute() -> list[Metric]:
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_SQL, {"pending": OrderStatus.PENDING, "confirmed": OrderStatus.CONFIRMED})
        oldest_pending, oldest_confirmed = cursor.fetchone()
    now = timezone.now()
    overdue = [0.0]
    if oldest_pending is not None:
        overdue.append((now - oldest_pending - timedelta(seconds=settings.ORDER_CONFIRM_DELAY)).total_seconds())
    if oldest_confirmed is not None:
        overdue.append((now - oldest_confirmed - timedelta(seconds=settings.ORDER_SHIP_DELAY)).total_seconds())
    return [GaugeMetricFamily(*_DUE, value=max(overdue))]


def lifecycle_collector(**options: Any) -> CachedQueryCollector:
    """The lifecycle gauge, cached (options: max_age, clock; see CachedQueryCollector)."""
    return CachedQueryCollector(_compute, describe=_describe, **options)
