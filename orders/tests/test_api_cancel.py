"""POST /api/v1/orders/{id}/cancel/: once, only by a client acting for its customer, and once under a race."""

import threading

import pytest
from django.db import connections
from rest_framework.test import APIClient

from orders.models import Order, OrderStatusChange
from orders.tests.factories import OrderFactory, UserFactory, grant, token_for
from orders_project.rfc3339 import rfc3339
from outbox.models import OutboxEvent
from tests.support.api import order_url


def _cancelled_events(order):
    return OutboxEvent.objects.filter(event_type="order.cancelled", payload__data__order_id=str(order.id))


@pytest.mark.django_db
def test_cancel_a_pending_order_then_again_gives_200_then_409(api_client, user):
    # given a pending order of this client
    order = OrderFactory.create(created_by=user, user_id="user123")

    # when it is cancelled twice
    first = api_client.post(order_url(order.id, "cancel"), {"reason": "changed my mind"}, format="json")
    second = api_client.post(order_url(order.id, "cancel"), {}, format="json")

    # then the first cancels it and the second is refused with a clear code
    assert first.status_code == 200
    order.refresh_from_db()
    body = first.json()
    assert (body["status"], body["version"], body["cancel_reason"]) == ("cancelled", 2, "changed my mind")
    assert body["cancelled_at"] == rfc3339(order.cancelled_at)
    assert second.status_code == 409
    assert second.json() == {
        "code": "order_not_cancellable",
        "message": "A cancelled order cannot become cancelled.",
        "details": {},
    }
    assert (order.status, order.version) == ("cancelled", 2)
    assert list(order.history.values_list("order_version", "from_status", "to_status", "reason", "changed_by")) == [
        (1, "", "pending", "", "client:alice"),
        (2, "pending", "cancelled", "changed my mind", "client:alice"),
    ]
    event = _cancelled_events(order).get()
    assert (event.topic, event.key) == ("order.cancelled", "user123")
    assert event.payload["data"] == {
        "order_id": str(order.id),
        "user_id": "user123",
        "status": "cancelled",
        "order_version": 2,
        "reason": "changed my mind",
        "cancelled_at": rfc3339(order.cancelled_at),
    }


@pytest.mark.django_db
def test_cancel_without_a_body_uses_the_default_reason(api_client, user):
    order = OrderFactory.create(created_by=user)

    response = api_client.post(order_url(order.id, "cancel"))

    assert response.status_code == 200
    assert response.json()["cancel_reason"] == "requested_by_client"


@pytest.mark.django_db
def test_cancel_a_confirmed_order_is_allowed(api_client, user):
    order = OrderFactory.create(created_by=user, status="confirmed")

    response = api_client.post(order_url(order.id, "cancel"), format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["version"]) == ("cancelled", 3)


@pytest.mark.django_db
def test_cancel_a_shipped_order_is_409_and_changes_nothing(api_client, user):
    order = OrderFactory.create(created_by=user, status="shipped")

    response = api_client.post(order_url(order.id, "cancel"), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_cancellable"
    order.refresh_from_db()
    assert (order.status, order.version, order.history.count()) == ("shipped", 3, 3)
    assert _cancelled_events(order).count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"reason": ""}, {"reason": ["This field may not be blank."]}),
        ({"reason": "x" * 201}, {"reason": ["Ensure this field has no more than 200 characters."]}),
        ({"why": "no"}, {"why": ["Unknown field."]}),
    ],
)
def test_cancel_rejects_a_bad_body_and_leaves_the_order_pending(api_client, user, body, details):
    order = OrderFactory.create(created_by=user)

    response = api_client.post(order_url(order.id, "cancel"), body, format="json")

    assert response.status_code == 400
    assert response.json()["details"] == details
    order.refresh_from_db()
    assert order.status == "pending"
    assert _cancelled_events(order).count() == 0


@pytest.mark.django_db
def test_cancel_of_another_customers_order_is_404_and_it_stays_pending(customer_client, other_user):
    # given an order of another customer than the one this client is bound to
    order = OrderFactory.create(created_by=other_user, user_id="someone-else")

    # when this client tries to cancel it
    response = customer_client.post(order_url(order.id, "cancel"), format="json")

    # then it is told the order does not exist, and nothing changes
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "details": {}}
    order.refresh_from_db()
    assert (order.status, order.version) == ("pending", 1)
    assert _cancelled_events(order).count() == 0


@pytest.mark.django_db
def test_staff_can_cancel_any_clients_order(staff_client, other_user):
    order = OrderFactory.create(created_by=other_user)

    response = staff_client.post(order_url(order.id, "cancel"), {"reason": "fraud"}, format="json")

    assert response.status_code == 200
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", "fraud")
    assert order.history.get(order_version=2).changed_by == "client:ops"
    assert _cancelled_events(order).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_cancels_give_one_200_one_409_and_one_event():
    # given a committed pending order and two clients allowed to cancel it
    owner = grant(UserFactory.create(username="owner"), "act_for_any_customer")
    order = OrderFactory.create(created_by=owner)
    token = token_for(owner)
    barrier = threading.Barrier(2, timeout=10)
    statuses: list[int] = []
    codes: list[str] = []
    errors: list[BaseException] = []

    def cancel() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            barrier.wait()
            response = client.post(order_url(order.id, "cancel"), format="json")
            statuses.append(response.status_code)
            codes.append(response.json().get("code", ""))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    # when both cancel at the same moment from their own threads and connections
    threads = [threading.Thread(target=cancel) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then the row lock lets exactly one win
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(statuses) == [200, 409]
    assert "order_not_cancellable" in codes
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.version) == ("cancelled", 2)
    assert OrderStatusChange.objects.filter(order=order).count() == 2
    assert _cancelled_events(order).count() == 1
