"""Staff in the admin, in Chromium: find an order, read its history and events, cancel
orders through the action, requeue a dead outbox row."""

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from selenium.webdriver.common.by import By

from orders.lifecycle import orders_advance
from orders.models import Order, OrderStatus, OrderStatusChange
from orders.tests.factories import OrderFactory
from outbox.models import OutboxEvent, OutboxStatus
from tests.support.browser import PASSWORD, admin_messages, element, log_in, run_action, texts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _staff(username: str, *permissions: str) -> User:
    """A staff member with exactly these permissions ("app.codename"), not a superuser."""
    user = User.objects.create_user(username=username, password=PASSWORD, is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def _shipped(settings, user_id: str) -> Order:
    """An order the lifecycle confirmed and shipped, with all three events (the factory writes history only)."""
    order = OrderFactory.create(user_id=user_id)
    settings.ORDER_CONFIRM_DELAY = settings.ORDER_SHIP_DELAY = 0
    orders_advance()
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    return order


def test_staff_find_an_order_by_customer_and_see_its_items_history_and_events(
    browser, live_server, screenshot, settings
):
    # given a shipped order among others, and a staff member who may view orders and the outbox
    order = _shipped(settings, "ada-lovelace")
    OrderFactory.create(user_id="bob")
    _staff("viewer", "orders.view_order", "outbox.view_outboxevent")

    # when they search for the customer and open the order
    log_in(browser, live_server.url, "viewer")
    browser.get(f"{live_server.url}/admin/orders/order/")
    element(browser, "#searchbar").send_keys("ada-lovelace\n")
    element(browser, "#result_list")
    screenshot("admin-order-list")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    element(browser, "#order-events")
    screenshot("admin-order-page")

    # then the page shows the items, every step of the history and every event of the order
    assert str(order.id) in browser.page_source
    assert texts(browser, "#history-group td.field-order_version") == ["1", "2", "3"]
    assert texts(browser, "#history-group td.field-to_status") == ["Pending", "Confirmed", "Shipped"]
    events = texts(browser, "#order-events tbody tr td:nth-child(2)")
    assert events == ["order.created", "order.confirmed", "order.shipped"]
    assert len(texts(browser, "#items-group td.field-product_id")) == order.items.count()
    # and nothing on the page lets them change the order
    assert not browser.find_elements(By.CSS_SELECTOR, "input[name=_save]")


def test_staff_cancel_orders_from_the_list_and_get_a_409_message_for_those_that_cannot_be(
    browser, live_server, screenshot, settings
):
    # given a pending and a shipped order, and a staff member with the cancel permission
    shipped = _shipped(settings, "grace")
    pending = OrderFactory.create(user_id="grace")
    _staff("canceller", "orders.view_order", "orders.cancel_order", "outbox.view_outboxevent")
    log_in(browser, live_server.url, "canceller")
    browser.get(f"{live_server.url}/admin/orders/order/?q=grace")
    element(browser, "#result_list")

    # when they select both and run "Cancel selected orders"
    run_action(browser, "cancel_orders", [str(pending.id), str(shipped.id)])
    screenshot("admin-cancel-result")

    # then the pending one is cancelled through the service, the shipped one is refused with a 409 message
    assert admin_messages(browser) == [
        "Cancelled 1 order(s).",
        f"409 Conflict: 1 order(s) cannot be cancelled: {shipped.id} (A shipped order cannot become cancelled.)",
    ]
    pending.refresh_from_db()
    assert (pending.status, pending.version, pending.cancel_reason) == ("cancelled", 2, "cancelled_by_staff")
    change = OrderStatusChange.objects.get(order=pending, order_version=2)
    assert (change.from_status, change.to_status, change.changed_by) == ("pending", "cancelled", "staff:canceller")
    event = OutboxEvent.objects.get(event_type="order.cancelled")
    assert (event.key, event.payload["data"]["order_id"], event.status) == ("grace", str(pending.id), "pending")
    assert Order.objects.get(pk=shipped.pk).status == OrderStatus.SHIPPED

    # and the order's page shows the new history row and its event
    browser.get(f"{live_server.url}/admin/orders/order/{pending.id}/change/")
    element(browser, "#order-events")
    screenshot("admin-cancelled-order-page")
    assert texts(browser, "#order-events tbody tr td:nth-child(2)") == ["order.created", "order.cancelled"]
    assert texts(browser, "#history-group td.field-changed_by")[-1] == "staff:canceller"


def test_staff_requeue_a_dead_outbox_row(browser, live_server, screenshot):
    # given a dead event (Kafka refused it five times)
    order = OrderFactory.create(user_id="linus")
    OutboxEvent.objects.filter(payload__data__order_id=str(order.id)).update(
        status=OutboxStatus.DEAD, attempts=5, last_error="MessageSizeTooLargeError: too big"
    )
    dead = OutboxEvent.objects.get(payload__data__order_id=str(order.id))
    _staff("operator", "outbox.view_outboxevent", "outbox.change_outboxevent")
    log_in(browser, live_server.url, "operator")

    # when the operator filters the dead rows and requeues this one
    browser.get(f"{live_server.url}/admin/outbox/outboxevent/?status__exact=dead")
    element(browser, "#result_list")
    assert element(browser, "#content h1").text == "Outbox events: 0 pending, 1 dead"
    screenshot("admin-outbox-dead")
    run_action(browser, "requeue", [str(dead.id)])

    # then it is pending again, from a fresh start
    assert admin_messages(browser) == ["Requeued 1 dead events (others were not dead)."]
    dead.refresh_from_db()
    assert (dead.status, dead.attempts, dead.last_error) == ("pending", 0, "")
    assert dead.next_attempt_at <= timezone.now()
