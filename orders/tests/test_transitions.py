"""The state machine table and the invariants PostgreSQL holds for it."""

import itertools

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import Order, OrderItem, OrderStatus, OrderStatusChange
from orders.tests.factories import OrderFactory
from orders.transitions import ALLOWED_TRANSITIONS, InvalidTransition, sources_of, transition_check

ALLOWED = {("pending", "confirmed"), ("pending", "cancelled"), ("confirmed", "shipped"), ("confirmed", "cancelled")}
ALL_PAIRS = set(itertools.product(OrderStatus.values, repeat=2))


def test_the_table_is_exactly_the_documented_state_machine():
    assert {(src, dst) for src, targets in ALLOWED_TRANSITIONS.items() for dst in targets} == ALLOWED
    assert set(ALLOWED_TRANSITIONS) == set(OrderStatus.values)


@pytest.mark.parametrize(("from_status", "to_status"), sorted(ALLOWED))
def test_allowed_transitions_pass(from_status, to_status):
    transition_check(from_status=from_status, to_status=to_status)  # does not raise


@pytest.mark.parametrize(("from_status", "to_status"), sorted(ALL_PAIRS - ALLOWED))
def test_every_other_transition_is_refused_with_409(from_status, to_status):
    with pytest.raises(InvalidTransition) as refused:
        transition_check(from_status=from_status, to_status=to_status)

    expected_code = "order_not_cancellable" if to_status == "cancelled" else "invalid_transition"
    assert (refused.value.code, refused.value.http_status) == (expected_code, 409)
    assert refused.value.message == f"A {from_status} order cannot become {to_status}."


def test_an_unknown_source_status_is_refused():
    with pytest.raises(InvalidTransition):
        transition_check(from_status="lost", to_status="cancelled")


def test_sources_of_lists_the_statuses_that_may_move_to_a_status():
    assert sources_of("cancelled") == ["confirmed", "pending"]
    assert sources_of("shipped") == ["confirmed"]
    assert sources_of("confirmed") == ["pending"]
    assert sources_of("pending") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model_update", "constraint"),
    [
        (lambda order: Order.objects.filter(pk=order.pk).update(status="lost"), "order_status_valid"),
        (lambda order: Order.objects.filter(pk=order.pk).update(version=0), "order_version_positive"),
        (lambda order: Order.objects.filter(pk=order.pk).update(currency="usd"), "order_currency_iso"),
        (lambda order: Order.objects.filter(pk=order.pk).update(total_amount=-1), "order_total_non_negative"),
        (lambda order: OrderItem.objects.filter(order=order).update(quantity=0), "order_item_quantity_positive"),
        (lambda order: OrderItem.objects.filter(order=order).update(price=-1), "order_item_price_non_negative"),
        (lambda order: order.history.update(to_status="lost"), "order_history_to_valid"),
        (lambda order: order.history.update(from_status="lost"), "order_history_from_valid"),
    ],
)
def test_the_database_refuses_rows_that_break_an_invariant(model_update, constraint):
    order = OrderFactory.create()

    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        model_update(order)


@pytest.mark.django_db
def test_the_database_allows_one_history_row_per_order_version():
    order = OrderFactory.create()

    with pytest.raises(IntegrityError, match="order_history_one_row_per_version"), transaction.atomic():
        OrderStatusChange.objects.create(
            order=order,
            order_version=1,
            from_status="pending",
            to_status="cancelled",
            changed_at=timezone.now(),
            changed_by="system:test",
        )
