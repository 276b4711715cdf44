"""Order metrics: counters move when the change commits (never for a rolled-back one), the
customer check counts its outcome once per request, and the lifecycle gauge is cached."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry

from orders.lifecycle import orders_advance
from orders.metrics import lifecycle_collector
from orders.models import Order, OrderStatus
from orders.services import UserNotFound, order_cancel
from tests.support.api import cached_user
from tests.support.lifecycle import order_new

pytestmark = pytest.mark.django_db


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _transitions(from_status: str, to_status: str) -> float:
    return _sample("order_transitions_total", from_status=from_status, to_status=to_status)


def test_a_created_order_counts_on_commit_and_a_rolled_back_one_never(django_capture_on_commit_callbacks):
    before = _sample("orders_created_total")

    with django_capture_on_commit_callbacks(execute=True):
        order_new()
    with pytest.raises(RuntimeError), transaction.atomic():
        order_new()
        raise RuntimeError("roll back")

    assert _sample("orders_created_total") - before == 1


def test_lifecycle_and_cancel_count_each_transition(settings, django_capture_on_commit_callbacks):
    # given three pending orders, all due for confirmation
    settings.ORDER_CONFIRM_DELAY = 0
    orders = [order_new(f"user-{n}") for n in range(3)]
    confirmed_before = _transitions(OrderStatus.PENDING, OrderStatus.CONFIRMED)
    cancelled_before = _transitions(OrderStatus.CONFIRMED, OrderStatus.CANCELLED)

    # when the lifecycle confirms them and a client cancels one
    with django_capture_on_commit_callbacks(execute=True):
        assert orders_advance().confirmed == 3
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order_id=orders[0].id, reason="changed my mind", changed_by="client:test")

    # then each transition is counted once, by its statuses
    assert _transitions(OrderStatus.PENDING, OrderStatus.CONFIRMED) - confirmed_before == 3
    assert _transitions(OrderStatus.CONFIRMED, OrderStatus.CANCELLED) - cancelled_before == 1


def test_the_customer_check_counts_one_outcome_per_request(settings, api_client):
    # given a known user, and an unknown one that the settings refuse
    settings.ORDER_REQUIRE_KNOWN_USER = True
    known = cached_user()
    body = {"currency": "USD", "items": [{"product_id": "p1", "quantity": 1, "price": "5.00"}]}
    valid_before = _sample("user_validation_total", result="valid")
    refused_before = _sample("user_validation_total", result="not_found")

    # when an order is created for each through the API
    created = api_client.post("/api/v1/orders/", {**body, "user_id": known}, format="json")
    refused = api_client.post("/api/v1/orders/", {**body, "user_id": "nobody"}, format="json")

    # then each request counted one outcome (the recheck inside the transaction does not count again)
    assert (created.status_code, refused.status_code) == (201, 422)
    assert refused.json()["code"] == UserNotFound.code
    assert _sample("user_validation_total", result="valid") - valid_before == 1
    assert _sample("user_validation_total", result="not_found") - refused_before == 1


def test_the_dashboards_http_metrics_count_every_request_by_status_and_view(api_client):
    # given the series the dashboards and the 5xx alert read (charts/order-service), before
    body = {"user_id": "metrics-1", "currency": "USD", "items": [{"product_id": "p1", "quantity": 1, "price": "5.00"}]}
    view = "order-list"
    created_before = _sample("django_http_responses_total_by_status_total", status="201")
    refused_before = _sample("django_http_responses_total_by_status_total", status="400")
    by_view_before = _sample(
        "django_http_responses_total_by_status_view_method_total", status="201", view=view, method="POST"
    )
    latency_before = _sample("django_http_requests_latency_seconds_by_view_method_count", view=view, method="POST")

    # when two orders are created and one body is refused (the labelled children are reused)
    answers = [api_client.post("/api/v1/orders/", body, format="json") for _ in range(2)]
    answers.append(api_client.post("/api/v1/orders/", {"currency": "USD"}, format="json"))

    # then each answer is counted once under its status, view and method
    assert [answer.status_code for answer in answers] == [201, 201, 400]
    assert _sample("django_http_responses_total_by_status_total", status="201") - created_before == 2
    assert _sample("django_http_responses_total_by_status_total", status="400") - refused_before == 1
    by_view = _sample("django_http_responses_total_by_status_view_method_total", status="201", view=view, method="POST")
    assert by_view - by_view_before == 2
    latency = _sample("django_http_requests_latency_seconds_by_view_method_count", view=view, method="POST")
    assert latency - latency_before == 3


def _due_age(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value("lifecycle_oldest_due_age_seconds")
    assert value is not None
    return value


def test_lifecycle_gauge_says_how_long_the_most_overdue_order_has_waited(settings):
    # given a confirmation delay of 30 s, and a pending order created 100 s ago
    settings.ORDER_CONFIRM_DELAY = 30
    registry = CollectorRegistry()
    registry.register(lifecycle_collector(max_age=0))
    assert _due_age(registry) == 0.0
    order = order_new()
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - dt.timedelta(seconds=100))

    # then it has been due for about 70 s
    assert 70.0 <= _due_age(registry) < 80.0


def test_lifecycle_gauge_is_computed_once_per_cache_window():
    clock = [0.0]
    registry = CollectorRegistry()
    registry.register(lifecycle_collector(max_age=5.0, clock=lambda: clock[0]))

    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            _due_age(registry)
            clock[0] += 0.2  # twenty scrapes within four seconds
    assert len(queries.captured_queries) == 1
