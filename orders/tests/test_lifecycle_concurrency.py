"""Processor runs in parallel threads, each with its own connection, against each other and cancels.

transaction=True: every service call commits for real, so SKIP LOCKED and
row locks behave as between two Celery workers.
"""

import threading
import time
import uuid
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test import override_settings

from orders.lifecycle import AdvanceResult, _advance_batch, orders_advance
from orders.models import Order, OrderStatus
from orders.services import order_cancel
from orders.transitions import InvalidTransition
from outbox.models import OutboxEvent
from tests.support.lifecycle import histories, lifecycle_violations, orders_many, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

CREATED = ("", "pending")
CONFIRM = ("pending", "confirmed")
SHIP = ("confirmed", "shipped")
CANCEL_PENDING = ("pending", "cancelled")
CANCEL_CONFIRMED = ("confirmed", "cancelled")
NO_SHIPPING = override_settings(ORDER_CONFIRM_DELAY=0, ORDER_SHIP_DELAY=3600)
ALL_DUE = override_settings(ORDER_CONFIRM_DELAY=0, ORDER_SHIP_DELAY=0)


def _runs_until_idle(batch_size):
    """One worker: beat ticks back to back (so runs overlap), until a run finds nothing due."""

    def work():
        total = AdvanceResult()
        while True:
            result = orders_advance(batch_size=batch_size, max_batches=1000)
            if result == AdvanceResult():
                return total
            total.confirmed += result.confirmed
            total.shipped += result.shipped

    return work


def _event_counts():
    return Counter(OutboxEvent.objects.values_list("event_type", flat=True))


@NO_SHIPPING
def test_three_parallel_processors_confirm_1200_due_orders_each_exactly_once():
    # given 1200 due pending orders
    ids = orders_many(1200)

    # when three workers with small batches run at once
    results = run_in_threads([_runs_until_idle(batch_size=50)] * 3)

    # then together they confirmed each order once: one history row and one event per move
    assert sum(result.confirmed for result in results) == 1200
    assert sum(result.shipped for result in results) == 0
    chains = histories()
    assert set(chains) == set(ids)
    assert all(chain == [CREATED, CONFIRM] for chain in chains.values())
    assert _event_counts() == {"order.created": 1200, "order.confirmed": 1200}
    assert lifecycle_violations() == []


@ALL_DUE
def test_four_parallel_processors_confirm_and_ship_1000_orders_each_step_exactly_once():
    ids = orders_many(1000)

    results = run_in_threads([_runs_until_idle(batch_size=40)] * 4)

    assert sum(result.confirmed for result in results) == 1000
    assert sum(result.shipped for result in results) == 1000
    chains = histories()
    assert set(chains) == set(ids)
    assert all(chain == [CREATED, CONFIRM, SHIP] for chain in chains.values())
    assert _event_counts() == {"order.created": 1000, "order.confirmed": 1000, "order.shipped": 1000}
    assert lifecycle_violations() == []


@NO_SHIPPING
def test_more_overlapping_runs_than_batches_never_move_an_order_twice():
    # given 120 due orders: at most three batches of 50 for eight runs started together
    orders_many(120)

    results = run_in_threads([lambda: orders_advance(batch_size=50, max_batches=1000)] * 8)

    assert sum(result.confirmed for result in results) == 120
    assert Counter(chain[-1] for chain in histories().values()) == {CONFIRM: 120}
    assert _event_counts() == {"order.created": 120, "order.confirmed": 120}
    assert lifecycle_violations() == []


@NO_SHIPPING
def test_a_run_skips_orders_whose_rows_another_transaction_holds_and_takes_them_later():
    # given 30 due orders, of which this thread's open transaction locks the 10 oldest (a slow run)
    ids = orders_many(30)
    with transaction.atomic():
        locked = list(Order.objects.select_for_update().filter(id__in=ids[:10]).values_list("id", flat=True))

        # when a run on another connection goes meanwhile, it neither waits nor touches them
        [result] = run_in_threads([orders_advance])
        assert result == AdvanceResult(confirmed=20, shipped=0)
        assert set(Order.objects.filter(status="pending").values_list("id", flat=True)) == set(locked)

    # then once the locks go, the next run takes the rest
    assert orders_advance() == AdvanceResult(confirmed=10, shipped=0)
    assert _event_counts() == {"order.created": 30, "order.confirmed": 30}
    assert lifecycle_violations() == []


def _wait_until_a_backend_waits_for_a_lock(deadline_seconds=10):
    deadline = time.monotonic() + deadline_seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Inside a transaction PostgreSQL keeps serving one stats snapshot unless told to drop it.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)  # polling interval of the wait, not a synchronisation guess
    raise AssertionError("no backend started waiting for the row lock")


@ALL_DUE
def test_a_cancel_waits_for_a_shipping_batch_then_is_refused():
    # given a confirmed order whose shipping batch holds its lock, uncommitted
    [order_id] = orders_many(1)
    with NO_SHIPPING:
        assert orders_advance() == AdvanceResult(confirmed=1, shipped=0)
    outcome = {}

    def cancel():
        try:
            order_cancel(order_id=order_id, reason="too late?", changed_by="system:test")
            outcome["cancel"] = "won"
        except InvalidTransition as exc:
            outcome["cancel"] = exc.code

    with transaction.atomic():
        assert _advance_batch(from_status=OrderStatus.CONFIRMED, to_status=OrderStatus.SHIPPED, limit=10) == 1
        # when a cancel comes meanwhile, from another connection
        canceller = threading.Thread(target=lambda: run_in_threads([cancel]))
        canceller.start()
        _wait_until_a_backend_waits_for_a_lock()
    canceller.join(timeout=30)

    # then it waited for the batch, saw "shipped" and was refused: one winner, one event
    assert not canceller.is_alive()
    assert outcome == {"cancel": "order_not_cancellable"}
    assert histories() == {order_id: [CREATED, CONFIRM, SHIP]}
    assert _event_counts() == {"order.created": 1, "order.confirmed": 1, "order.shipped": 1}
    assert lifecycle_violations() == []


def _canceller(order_ids, outcomes):
    def work():
        for order_id in order_ids:
            try:
                order_cancel(order_id=order_id, reason="race", changed_by="system:test")
                outcomes[order_id] = "cancelled"
            except InvalidTransition as exc:
                outcomes[order_id] = exc.code

    return work


@NO_SHIPPING
def test_cancels_racing_confirmations_never_let_both_win_from_pending():
    # given 600 due pending orders
    ids = orders_many(600)
    outcomes: dict[uuid.UUID, str] = {}

    # when two threads cancel every order, newest first, while three processors confirm oldest
    # first in small batches: they meet somewhere in the middle and fight over the same rows there
    backwards = ids[::-1]
    workers = [_runs_until_idle(batch_size=5)] * 3 + [
        _canceller(backwards[0::2], outcomes),
        _canceller(backwards[1::2], outcomes),
    ]
    results = run_in_threads(workers)

    # then every cancel succeeded (a confirmed order may still be cancelled), and each order
    # left pending exactly once: either cancelled or confirmed then cancelled
    assert outcomes == dict.fromkeys(ids, "cancelled")
    chains = histories()
    confirmed_first = [oid for oid in ids if chains[oid] == [CREATED, CONFIRM, CANCEL_CONFIRMED]]
    cancelled_first = [oid for oid in ids if chains[oid] == [CREATED, CANCEL_PENDING]]
    assert len(confirmed_first) + len(cancelled_first) == 600
    # Both sides won some orders (typically ~500/~90 here): the race really took place.
    assert confirmed_first and cancelled_first
    assert sum(result.confirmed for result in results[:3]) == len(confirmed_first)
    assert _event_counts() == {
        "order.created": 600,
        "order.confirmed": len(confirmed_first),
        "order.cancelled": 600,
    }
    assert lifecycle_violations() == []


@NO_SHIPPING
def test_cancels_racing_shipments_let_exactly_one_of_them_win_per_order():
    # given 600 confirmed orders, all due to ship
    ids = orders_many(600)
    assert orders_advance() == AdvanceResult(confirmed=600, shipped=0)
    outcomes: dict[uuid.UUID, str] = {}

    # when two threads cancel every order, newest first, while three processors ship oldest first
    backwards = ids[::-1]
    with ALL_DUE:
        processors = [_runs_until_idle(batch_size=5)] * 3
        cancellers = [_canceller(backwards[0::2], outcomes), _canceller(backwards[1::2], outcomes)]
        results = run_in_threads([*processors, *cancellers])

    # then per order: either the cancel won (and it never shipped) or it was refused because it had shipped
    chains = histories()
    for oid in ids:
        expected = {"cancelled": CANCEL_CONFIRMED, "order_not_cancellable": SHIP}[outcomes[oid]]
        assert chains[oid] == [CREATED, CONFIRM, expected]
    shipped = Counter(outcomes.values())["order_not_cancellable"]
    assert 0 < shipped < 600  # both sides won some (typically ~500/~100): the race really took place
    assert sum(result.shipped for result in results[:3]) == shipped
    assert Order.objects.filter(status="shipped").count() == shipped
    assert _event_counts() == {
        "order.created": 600,
        "order.confirmed": 600,
        "order.shipped": shipped,
        "order.cancelled": 600 - shipped,
    }
    assert lifecycle_violations() == []
