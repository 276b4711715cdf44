"""Every error answers in one shape: {"code", "message", "details"}."""

import pytest

from orders import selectors
from orders.idempotency import idempotency_claim, request_fingerprint
from orders.tests.conftest import ORDERS_URL, order_url
from orders.tests.factories import SEED_PAYLOAD, OrderFactory

pytestmark = pytest.mark.django_db


def _assert_error(response, status, code, details=None):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["code", "message", "details"]
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["details"] == (details if details is not None else {})


def test_400_validation(api_client):
    response = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "currency": "ZZZ"}, format="json")

    _assert_error(response, 400, "validation_error", {"currency": ["'ZZZ' is not an ISO 4217 currency code."]})


def test_400_malformed(api_client):
    _assert_error(api_client.post(ORDERS_URL, "{", content_type="application/json"), 400, "malformed_request")


def test_401(anon_client):
    _assert_error(anon_client.get(ORDERS_URL), 401, "not_authenticated")


def test_404_inside_the_api(api_client):
    _assert_error(api_client.get(order_url("8d3c1f1e-0000-4000-8000-000000000000")), 404, "not_found")


def test_404_outside_the_api(api_client):
    _assert_error(api_client.get("/no/such/page/"), 404, "not_found")


def test_405(api_client, user):
    order = OrderFactory.create(created_by=user)

    _assert_error(api_client.delete(order_url(order.id)), 405, "method_not_allowed")


def test_409(api_client, user):
    order = OrderFactory.create(created_by=user, status="cancelled")

    _assert_error(api_client.post(order_url(order.id, "cancel"), format="json"), 409, "order_not_cancellable")


def test_409_idempotency_in_progress(api_client, user):
    fingerprint = request_fingerprint(method="POST", path=ORDERS_URL, body=SEED_PAYLOAD)
    idempotency_claim(client_id=user.pk, key="k1", fingerprint=fingerprint)

    response = api_client.post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    _assert_error(response, 409, "idempotency_key_in_progress")


def test_415(api_client):
    response = api_client.post(ORDERS_URL, "<order/>", content_type="application/xml")

    _assert_error(response, 415, "unsupported_media_type")


def test_422(api_client):
    api_client.post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    response = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    _assert_error(response, 422, "idempotency_key_reused")


def test_500_hides_the_fault_and_keeps_the_shape(api_client, monkeypatch, caplog):
    # A read has no input that can make PostgreSQL fail for real, so the selector is
    # made to raise; the database-error 500 on create is in test_idempotency.py.
    def broken(**kwargs):
        raise RuntimeError("selector exploded")

    monkeypatch.setattr(selectors, "order_list", broken)

    response = api_client.get(ORDERS_URL)

    _assert_error(response, 500, "internal_error")
    assert "selector exploded" not in response.content.decode()
    assert "Unhandled error in OrderViewSet" in caplog.text
