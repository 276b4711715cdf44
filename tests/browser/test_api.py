"""Developers' pages in Chromium: the browsable API (create an order with its form, cancel
it from the order's page) and the API docs (Swagger UI, Redoc) served by this service."""

import json
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from selenium.webdriver.common.by import By

from orders.models import Order, OrderStatus, OrderStatusChange
from orders.tests.factories import bind
from outbox.models import OutboxEvent
from tests.support.browser import PASSWORD, element, log_in, texts, wait
from tests.support.chromium import requested_hosts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _post_raw(browser, body: dict) -> None:
    """The browsable API's raw-data form: JSON in the textarea, then POST."""
    content = element(browser, "#post-generic-content-form textarea[name=_content]")
    content.clear()
    content.send_keys(json.dumps(body))
    browser.find_element(By.CSS_SELECTOR, "#post-generic-content-form button.btn-primary").click()


def _response_json(browser) -> dict:
    """The body the page shows (the browsable API prints the response in a <pre>)."""
    text = element(browser, ".response-info pre").text
    return json.loads(text[text.index("{") :])


def test_a_customer_creates_an_order_with_the_form_and_cancels_it_from_its_page(browser, live_server, screenshot):
    # given a logged-in API user bound to customer "cust-42"
    bind(User.objects.create_user(username="shop", password=PASSWORD), "cust-42")
    log_in(browser, live_server.url, "shop", path="/api-auth/login/?next=/api/v1/orders/")
    element(browser, "#post-generic-content-form")

    # when they post an order with the list page's form
    _post_raw(
        browser,
        {"user_id": "cust-42", "currency": "eur", "items": [{"product_id": "book", "quantity": 2, "price": "12.50"}]},
    )
    wait(browser, lambda d: "201 Created" in d.find_element(By.CSS_SELECTOR, ".response-info").text)
    screenshot("api-order-created")
    created = _response_json(browser)
    assert (created["status"], created["currency"], created["total_amount"]) == ("pending", "EUR", "25.00")

    # and open the order's page and its "cancel" extra action, and post the reason
    browser.get(f"{live_server.url}/api/v1/orders/{created['id']}/")
    element(browser, ".response-info")
    browser.find_element(By.CSS_SELECTOR, "#extra-actions-menu").click()
    wait(browser, lambda d: d.find_element(By.LINK_TEXT, "Cancel").is_displayed())
    browser.find_element(By.LINK_TEXT, "Cancel").click()
    element(browser, "#post-generic-content-form")
    screenshot("api-order-cancel-form")
    _post_raw(browser, {"reason": "changed my mind"})
    wait(browser, lambda d: "200 OK" in d.find_element(By.CSS_SELECTOR, ".response-info").text)
    screenshot("api-order-cancelled")

    # then the order is cancelled, with its history row and its event
    assert _response_json(browser)["status"] == "cancelled"
    order = Order.objects.get(pk=created["id"])
    assert (order.status, order.cancel_reason, order.user_id) == (OrderStatus.CANCELLED, "changed my mind", "cust-42")
    assert list(order.history.values_list("to_status", "changed_by")) == [
        ("pending", "client:shop"),
        ("cancelled", "client:shop"),
    ]
    assert list(OutboxEvent.objects.order_by("id").values_list("event_type", flat=True)) == [
        "order.created",
        "order.cancelled",
    ]
    assert OrderStatusChange.objects.count() == 2


def test_swagger_ui_lists_the_operations_and_loads_nothing_from_another_host(browser, live_server, screenshot):
    browser.get(f"{live_server.url}/api/docs/")

    element(browser, ".opblock-summary")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 5)
    screenshot("api-docs-swagger")

    summaries = texts(browser, ".opblock-summary-description")
    assert "Create an order" in summaries
    assert "Cancel a pending or confirmed order" in summaries
    assert "Status history of an order, oldest first" in summaries
    assert requested_hosts(browser) == {urlsplit(live_server.url).netloc}


def test_redoc_renders_the_api_and_loads_nothing_from_another_host(browser, live_server, screenshot):
    browser.get(f"{live_server.url}/api/redoc/")

    wait(browser, lambda d: "Create an order" in d.find_element(By.TAG_NAME, "body").text)
    screenshot("api-docs-redoc")

    assert requested_hosts(browser) == {urlsplit(live_server.url).netloc}
