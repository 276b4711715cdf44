"""The order admin for staff: the cancel action and its permission, the
order page's items, history and events for staff who may only view."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client

from orders.models import Order, OrderStatus, OrderStatusChange
from orders.selectors import order_events
from orders.tests.factories import OrderFactory
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

URL = "/admin/orders/order/"


def _client(username: str, *permissions: str) -> Client:
    user = User.objects.create_user(username=username, password="x", is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_staff_without_the_cancel_permission_see_no_cancel_action_and_cannot_post_it():
    client = _client("viewer", "orders.view_order", "orders.change_order")
    order = OrderFactory.create()

    page = client.get(URL)
    response = client.post(URL, {"action": "cancel_orders", ACTION_CHECKBOX_NAME: [order.id]})

    assert page.status_code == 200
    assert 'value="cancel_orders"' not in page.content.decode()
    assert response.status_code == 200  # the list again: no such action for this user
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING
    assert not OutboxEvent.objects.filter(event_type="order.cancelled").exists()


def test_the_cancel_action_goes_through_the_service_and_answers_409_for_orders_that_cannot_be_cancelled():
    client = _client("canceller", "orders.view_order", "orders.cancel_order")
    pending = OrderFactory.create(user_id="ada")
    shipped = OrderFactory.create(user_id="ada", status=OrderStatus.SHIPPED)

    page = client.get(URL)
    response = client.post(URL, {"action": "cancel_orders", ACTION_CHECKBOX_NAME: [pending.id, shipped.id]})

    assert 'value="cancel_orders"' in page.content.decode()
    assert response.status_code == 302
    messages = [str(message) for message in client.get(URL).context["messages"]]
    assert messages == [
        "Cancelled 1 order(s).",
        f"409 Conflict: 1 order(s) cannot be cancelled: {shipped.id} (A shipped order cannot become cancelled.)",
    ]
    change = OrderStatusChange.objects.get(order=pending, to_status=OrderStatus.CANCELLED)
    assert (change.changed_by, change.reason, change.order_version) == ("staff:canceller", "cancelled_by_staff", 2)
    event = OutboxEvent.objects.get(event_type="order.cancelled")
    assert (event.key, event.payload["data"]["order_id"]) == ("ada", str(pending.id))
    assert Order.objects.get(pk=shipped.pk).status == OrderStatus.SHIPPED


def test_staff_who_may_only_view_orders_see_items_and_history_but_no_events_without_the_outbox_permission():
    order = OrderFactory.create()
    viewer = _client("viewer", "orders.view_order")
    operator = _client("operator", "orders.view_order", "outbox.view_outboxevent")

    plain = viewer.get(f"{URL}{order.id}/change/")
    with_events = operator.get(f"{URL}{order.id}/change/")

    assert plain.status_code == with_events.status_code == 200
    inlines = [type(inline.opts).__name__ for inline in plain.context["inline_admin_formsets"]]
    assert inlines == ["OrderItemInline", "OrderStatusChangeInline"]
    assert plain.context["order_events"] == []
    assert "You may not view outbox events." in plain.content.decode()
    assert [event.event_type for event in with_events.context["order_events"]] == ["order.created"]
    assert 'id="order-events"' in with_events.content.decode()


def test_an_orders_events_are_found_through_the_index_not_a_scan_of_the_outbox():
    order = OrderFactory.create()
    OrderFactory.create()

    assert [event.payload["data"]["order_id"] for event in order_events(order=order)] == [str(order.id)]
    query = OutboxEvent.objects.filter(payload__data__order_id=str(order.id)).order_by("id")[:50]
    with connection.cursor() as cursor:
        # A two-row table is scanned whatever the indexes: forbid that, then see what is left.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = query.explain()
    # The outbox is partitioned by day: each partition's copy of the index is named after it
    # (outbox_outboxevent_pYYYYMMDD_expr_id_idx); on the legacy partition after an upgrade,
    # outbox_outboxevent_plegacy_payload_order_id_idx.
    scans = [line for line in plan.splitlines() if "Scan" in line]
    assert scans and all("_expr_id_idx" in line or "payload_order_id_idx" in line for line in scans), plan
