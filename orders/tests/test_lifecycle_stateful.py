"""Hypothesis drives creates, cancels, time passing and processor runs; invariants hold after every step.

A model tracks each order's expected status and how much (simulated) time
has passed since it was created and confirmed; every processor run is
predicted from it. Time passes by moving every stored timestamp back
(`clock_advance`): the processor compares them with `timezone.now()`, so this
is the clock moving forward, without sleeping and without mocking the clock.
Delays are 30 s and 120 s; time moves in steps of 10 s, so an order is
either clearly due or at least 10 s (far more than an example's real run
time) from it.
"""

from dataclasses import dataclass

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from orders.lifecycle import orders_advance
from orders.models import Order, OrderStatus
from orders.services import order_cancel
from orders.transitions import InvalidTransition
from outbox.models import OutboxEvent
from tests.support.lifecycle import clock_advance, lifecycle_violations, order_new

CONFIRM_DELAY = 30
SHIP_DELAY = 120


@dataclass
class Expected:
    status: str = OrderStatus.PENDING
    age: int = 0  # simulated seconds since creation
    confirmed_age: int | None = None  # simulated seconds since confirmation


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # One test transaction holds every example: start each from empty tables.
        OutboxEvent.objects.all().delete()
        Order.objects.all().delete()
        self.orders: dict = {}

    @rule(count=st.integers(min_value=1, max_value=3), user=st.sampled_from(["user-a", "user-b"]))
    def create(self, count, user):
        for _ in range(count):
            self.orders[order_new(user_id=user).id] = Expected()

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel(self, data):
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        expected = self.orders[order_id]
        if expected.status in (OrderStatus.PENDING, OrderStatus.CONFIRMED):
            order = order_cancel(order_id=order_id, reason="stateful", changed_by="system:test")
            assert order.status == OrderStatus.CANCELLED
            expected.status = OrderStatus.CANCELLED
        else:
            with pytest.raises(InvalidTransition) as refused:
                order_cancel(order_id=order_id, reason="stateful", changed_by="system:test")
            assert refused.value.code == "order_not_cancellable"

    @rule(seconds=st.sampled_from([10, 20, 30, 60, 120]))
    def time_passes(self, seconds):
        clock_advance(seconds)
        for expected in self.orders.values():
            expected.age += seconds
            if expected.confirmed_age is not None:
                expected.confirmed_age += seconds

    @rule(batch_size=st.sampled_from([1, 2, 500]), max_batches=st.sampled_from([1, 2, 20]))
    def process(self, batch_size, max_batches):
        # The model says which orders are due; the database breaks ties of age (oldest first).
        due_confirm = [oid for oid, e in self.orders.items() if e.status == "pending" and e.age >= CONFIRM_DELAY]
        due_ship = [oid for oid, e in self.orders.items() if e.status == "confirmed" and e.confirmed_age >= SHIP_DELAY]
        confirm_order = list(
            Order.objects.filter(id__in=due_confirm).order_by("created_at", "id").values_list("id", flat=True)
        )
        ship_order = list(
            Order.objects.filter(id__in=due_ship).order_by("confirmed_at", "id").values_list("id", flat=True)
        )
        cap = batch_size * max_batches

        result = orders_advance(batch_size=batch_size, max_batches=max_batches)

        assert (result.confirmed, result.shipped) == (min(len(due_confirm), cap), min(len(due_ship), cap))
        for order_id in confirm_order[:cap]:
            self.orders[order_id].status, self.orders[order_id].confirmed_age = OrderStatus.CONFIRMED, 0
        for order_id in ship_order[:cap]:
            self.orders[order_id].status = OrderStatus.SHIPPED

    @invariant()
    def statuses_match_the_model(self):
        assert dict(Order.objects.values_list("id", "status")) == {oid: e.status for oid, e in self.orders.items()}

    @invariant()
    def history_timestamps_versions_and_events_are_consistent(self):
        assert lifecycle_violations() == []


@pytest.mark.fuzz
@pytest.mark.django_db
@override_settings(ORDER_CONFIRM_DELAY=CONFIRM_DELAY, ORDER_SHIP_DELAY=SHIP_DELAY)
def test_lifecycle_state_machine():
    run_state_machine_as_test(
        LifecycleMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            database=None,  # no .hypothesis/ directory in the repository
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
