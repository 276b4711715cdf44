"""The orders.advance Celery task: registered under its beat name, runs orders_advance."""

import pytest
from django.conf import settings
from django.test import override_settings

from orders.models import Order
from orders.tasks import advance_orders
from orders_project.celery import app
from tests.support.lifecycle import histories, lifecycle_violations, order_new

pytestmark = pytest.mark.django_db


@override_settings(ORDER_CONFIRM_DELAY=0, ORDER_SHIP_DELAY=0)
def test_the_task_confirms_and_ships_due_orders_and_reports_counts():
    # given two orders due with zero delays
    first, second = order_new(), order_new()

    # when the task body runs (called directly, as a worker would)
    counts = advance_orders()

    # then both moved twice and the task says so
    assert counts == {"confirmed": 2, "shipped": 2}
    assert sorted(Order.objects.values_list("status", flat=True)) == ["shipped", "shipped"]
    assert set(histories()) == {first.id, second.id}
    assert lifecycle_violations() == []


@override_settings(ORDER_CONFIRM_DELAY=30, ORDER_SHIP_DELAY=120)
def test_the_task_with_nothing_due_moves_nothing():
    order = order_new()

    assert advance_orders() == {"confirmed": 0, "shipped": 0}
    order.refresh_from_db()
    assert (order.status, order.version) == ("pending", 1)


def test_the_task_is_registered_as_orders_advance_and_beat_runs_it_every_interval():
    assert app.tasks["orders.advance"].name == advance_orders.name == "orders.advance"
    interval = float(settings.ORDER_PROCESSOR_INTERVAL)
    assert settings.CELERY_BEAT_SCHEDULE["orders-advance"] == {
        "task": "orders.advance",
        "schedule": interval,
        "options": {"expires": interval},
    }
