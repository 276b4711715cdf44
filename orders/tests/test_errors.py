"""Every error answers in one shape: {"code", "message", "details"}."""

import pytest
from django.test import Client

from orders import selectors
from orders.tests.factories import SEED_PAYLOAD, OrderFactory, older_release_claim
from tests.support.api import ORDERS_URL, assert_error, order_url

pytestmark = pytest.mark.django_db


def test_400_validation(api_client):
    response = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "currency": "ZZZ"}, format="json")

    assert_error(response, 400, "validation_error", {"currency": ["'ZZZ' is not an ISO 4217 currency code."]})


def test_400_malformed(api_client):
    assert_error(api_client.post(ORDERS_URL, "{", content_type="application/json"), 400, "malformed_request")


def test_401(anon_client):
    assert_error(anon_client.get(ORDERS_URL), 401, "not_authenticated")


def test_404_inside_the_api(api_client):
    assert_error(api_client.get(order_url("8d3c1f1e-0000-4000-8000-000000000000")), 404, "not_found")


def test_404_outside_the_api(api_client):
    assert_error(api_client.get("/no/such/page/"), 404, "not_found")


def test_400_outside_the_api():
    # a Host header not in ALLOWED_HOSTS is refused by Django before any view
    assert_error(Client().get("/admin/login/", HTTP_HOST="evil.example"), 400, "malformed_request")


def test_403_outside_the_api(staff_user):
    # given a staff member without the permission to view orders in the admin
    browser = Client()
    browser.force_login(staff_user)

    assert_error(browser.get("/admin/orders/order/"), 403, "permission_denied")


def test_403_bad_csrf_token_outside_the_api(staff_user):
    # given a browser session whose form carries a token that does not match its CSRF cookie
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    browser.cookies["csrftoken"] = "a" * 32

    response = browser.post("/admin/logout/", {"csrfmiddlewaretoken": "b" * 32})

    assert_error(response, 403, "permission_denied")
    assert response.json()["message"] == "CSRF Failed: CSRF token from POST incorrect."


def test_403_bad_csrf_token_in_the_api(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.cookies["csrftoken"] = "a" * 32

    response = browser.post(ORDERS_URL, SEED_PAYLOAD, content_type="application/json", HTTP_X_CSRFTOKEN="b" * 32)

    assert_error(response, 403, "permission_denied")
    assert response.json()["message"] == "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect."


def test_405(api_client, user):
    order = OrderFactory.create(created_by=user)

    assert_error(api_client.delete(order_url(order.id)), 405, "method_not_allowed")


def test_409(api_client, user):
    order = OrderFactory.create(created_by=user, status="cancelled")

    assert_error(api_client.post(order_url(order.id, "cancel"), format="json"), 409, "order_not_cancellable")


def test_409_idempotency_in_progress(api_client, user):
    older_release_claim(client_id=user.pk, key="k1")

    response = api_client.post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert_error(response, 409, "idempotency_key_in_progress")


def test_415(api_client):
    response = api_client.post(ORDERS_URL, "<order/>", content_type="application/xml")

    assert_error(response, 415, "unsupported_media_type")


def test_422(api_client):
    api_client.post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    response = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert_error(response, 422, "idempotency_key_reused")


def test_500_hides_the_fault_and_keeps_the_shape(api_client, monkeypatch, caplog):
    # A read has no input that can make PostgreSQL fail for real, so the selector is
    # made to raise; the database-error 500 on create is in test_idempotency.py.
    def broken(**kwargs):
        raise RuntimeError("selector exploded")

    monkeypatch.setattr(selectors, "order_listing", broken)

    response = api_client.get(ORDERS_URL)

    assert_error(response, 500, "internal_error")
    assert "selector exploded" not in response.content.decode()
    assert "Unhandled error in OrderViewSet" in caplog.text
