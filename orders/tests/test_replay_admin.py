"""The order admin's replay action: the same service as the command, for staff allowed to requeue outbox rows."""

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from orders.replay import replay_event_id
from outbox.models import OutboxEvent, OutboxStatus
from tests.support.lifecycle import order_new

pytestmark = pytest.mark.django_db


def staff(*perms: str) -> Client:
    user = get_user_model().objects.create_user(username=f"staff-{len(perms)}", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


def _replay(client: Client, order_id: object) -> Any:
    return client.post(
        "/admin/orders/order/", {"action": "replay_events", "_selected_action": [str(order_id)]}, follow=True
    )


def test_staff_with_the_outbox_change_permission_replay_an_order():
    # given an order whose event was published and then cleaned up
    order = order_new("ada")
    OutboxEvent.objects.all().delete()
    client = staff("view_order", "change_outboxevent")

    # when staff run the action on it
    response = _replay(client, order.id)

    # then its event is rebuilt into the outbox for the relay, and staff are told
    assert response.status_code == 200
    (row,) = OutboxEvent.objects.all()
    assert (row.event_id, row.status, row.headers["replayed"]) == (
        replay_event_id(order_id=order.id, order_version=1, event_type="order.created"),
        OutboxStatus.PENDING,
        "true",
    )
    assert "1/1 changes (1 rebuilt); 1 queued" in response.content.decode()


def test_staff_without_it_are_not_offered_the_action_and_nothing_is_sent():
    order = order_new("ada")
    OutboxEvent.objects.all().delete()
    client = staff("view_order")

    listing = client.get("/admin/orders/order/")
    response = _replay(client, order.id)

    assert listing.status_code == 200
    assert "replay_events" not in listing.content.decode()
    assert response.status_code == 200
    assert OutboxEvent.objects.count() == 0
