"""POST /api/v1/orders/: validation, the created order and its outbox event."""

import copy
from decimal import Decimal
from typing import Any

import pytest

from orders.models import Order, OrderItem, OrderStatusChange
from orders.tests.factories import SEED_PAYLOAD
from orders_project.rfc3339 import rfc3339
from outbox.models import OutboxEvent
from tests.support.api import ORDERS_URL

pytestmark = pytest.mark.django_db


def _with(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(SEED_PAYLOAD)
    payload.pop("total_amount")
    payload.update(changes)
    return payload


def _item(**changes: Any) -> dict[str, Any]:
    return {"product_id": "prod1", "quantity": 2, "price": 49.99, **changes}


def _item_error(field: str, message: str) -> dict[str, Any]:
    return {"items": {"0": {field: [message]}}}


BAD_INPUTS = [
    pytest.param(_with(user_id=""), {"user_id": ["This field may not be blank."]}, id="user_id-empty"),
    pytest.param(
        _with(user_id="u" * 65), {"user_id": ["Ensure this field has no more than 64 characters."]}, id="user_id-65"
    ),
    pytest.param(
        {"currency": "USD", "items": [_item()]}, {"user_id": ["This field is required."]}, id="user_id-missing"
    ),
    pytest.param(_with(currency="ZZZ"), {"currency": ["'ZZZ' is not an ISO 4217 currency code."]}, id="currency-ZZZ"),
    pytest.param(
        _with(currency="US"), {"currency": ["Ensure this field has at least 3 characters."]}, id="currency-US"
    ),
    pytest.param(_with(currency="XTS"), {"currency": ["'XTS' is not an ISO 4217 currency code."]}, id="currency-test"),
    pytest.param(
        _with(items=[]), {"items": {"non_field_errors": ["Ensure this field has at least 1 elements."]}}, id="items-0"
    ),
    pytest.param(
        _with(items=[_item(product_id=f"p{n}") for n in range(101)]),
        {"items": {"non_field_errors": ["Ensure this field has no more than 100 elements."]}},
        id="items-101",
    ),
    pytest.param(
        _with(items=[_item(product_id="")]),
        _item_error("product_id", "This field may not be blank."),
        id="product-empty",
    ),
    pytest.param(
        _with(items=[_item(product_id="p" * 65)]),
        _item_error("product_id", "Ensure this field has no more than 64 characters."),
        id="product-65",
    ),
    pytest.param(
        _with(items=[_item(quantity=0)]),
        _item_error("quantity", "Ensure this value is greater than or equal to 1."),
        id="quantity-0",
    ),
    pytest.param(
        _with(items=[_item(quantity=10001)]),
        _item_error("quantity", "Ensure this value is less than or equal to 10000."),
        id="quantity-10001",
    ),
    pytest.param(
        _with(items=[_item(quantity=1.5)]), _item_error("quantity", "A valid integer is required."), id="quantity-1.5"
    ),
    pytest.param(
        _with(items=[_item(quantity="abc")]), _item_error("quantity", "A valid integer is required."), id="quantity-abc"
    ),
    pytest.param(
        _with(items=[_item(price=-1)]),
        _item_error("price", "Ensure this value is greater than or equal to 0."),
        id="price-negative",
    ),
    pytest.param(
        _with(items=[_item(price=1.001)]),
        _item_error("price", "Ensure that there are no more than 2 decimal places."),
        id="price-3-places",
    ),
    pytest.param(
        _with(items=[_item(price="1000000.01")]),
        _item_error("price", "Ensure this value is less than or equal to 1000000.00."),
        id="price-above-max",
    ),
    pytest.param(
        _with(items=[_item(price="NaN")]), _item_error("price", "A valid number is required."), id="price-nan"
    ),
    pytest.param(
        _with(shipping_address="a" * 501),
        {"shipping_address": ["Ensure this field has no more than 500 characters."]},
        id="address-501",
    ),
    pytest.param(
        _with(total_amount=99.99),
        {"total_amount": ["Must equal the sum of the items (99.98), got 99.99."]},
        id="total-mismatch",
    ),
    pytest.param(_with(coupon="FREE"), {"coupon": ["Unknown field."]}, id="unknown-field"),
    pytest.param(
        _with(items=[_item(colour="red")]), {"items": {"0": {"colour": ["Unknown field."]}}}, id="unknown-item"
    ),
]


@pytest.mark.parametrize(("payload", "details"), BAD_INPUTS)
def test_create_rejects_bad_input_naming_the_field_and_writes_nothing(api_client, payload, details):
    # given a body with one bad value
    # when it is posted
    response = api_client.post(ORDERS_URL, payload, format="json")

    # then 400 names the field, and no order or event exists
    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "details": details,
    }
    assert Order.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[1]", "Invalid data. Expected a dictionary, but got list."),
        ("null", "No data provided"),
    ],
)
def test_create_rejects_a_json_body_that_is_not_an_object(api_client, body, message):
    response = api_client.post(ORDERS_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["details"] == {"non_field_errors": [message]}
    assert Order.objects.count() == 0


def test_create_refuses_a_body_that_is_not_json_with_415(api_client):
    response = api_client.post(ORDERS_URL, "user_id=user123", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json() == {
        "code": "unsupported_media_type",
        "message": 'Unsupported media type "application/x-www-form-urlencoded" in request.',
        "details": {},
    }
    assert Order.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_create_refuses_malformed_json_with_400(api_client):
    response = api_client.post(ORDERS_URL, '{"user_id": "user123",', content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "malformed_request"
    assert body["message"].startswith("JSON parse error - ")
    assert body["details"] == {}
    assert Order.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_create_seed_example_returns_201_with_the_order_and_location(api_client, user):
    # when the seed example is posted
    response = api_client.post(ORDERS_URL, SEED_PAYLOAD, format="json")

    # then the order is created as sent, with a Location pointing at it
    assert response.status_code == 201
    order = Order.objects.get()
    body = response.json()
    assert response["Location"] == f"http://testserver/api/v1/orders/{order.id}/"
    assert body == {
        "id": str(order.id),
        "user_id": "user123",
        "status": "pending",
        "currency": "USD",
        "total_amount": "99.98",
        "shipping_address": "",
        "items": [{"product_id": "prod1", "quantity": 2, "price": "49.99"}],
        "payment_id": "",
        "tracking_number": "",
        "carrier": "",
        "estimated_delivery": None,
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.created_at),
        "confirmed_at": None,
        "shipped_at": None,
        "cancelled_at": None,
        "cancel_reason": "",
        "version": 1,
    }
    assert order.total_amount == Decimal("99.98")
    assert order.created_by == user
    assert list(OrderItem.objects.values_list("product_id", "quantity", "price")) == [("prod1", 2, Decimal("49.99"))]
    history = OrderStatusChange.objects.get()
    assert (history.order_id, history.order_version, history.from_status, history.to_status) == (
        order.id,
        1,
        "",
        "pending",
    )
    assert history.changed_by == "client:alice"


def test_create_seed_example_with_a_wrong_total_is_refused_naming_total_amount(api_client):
    response = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "total_amount": 99.99}, format="json")

    assert response.status_code == 400
    assert response.json()["details"] == {"total_amount": ["Must equal the sum of the items (99.98), got 99.99."]}
    assert Order.objects.count() == 0


def test_create_accepts_lower_case_currency_and_stores_upper_case(api_client):
    response = api_client.post(ORDERS_URL, _with(currency="usd"), format="json")

    assert response.status_code == 201
    assert response.json()["currency"] == "USD"
    assert Order.objects.get().currency == "USD"


def test_create_accepts_the_limits(api_client):
    # given every value at its allowed edge
    items = [_item(product_id=f"{n:064d}", quantity=10000, price="1000000.00") for n in range(100)]
    payload = _with(user_id="u" * 64, items=items, shipping_address="a" * 500, total_amount="1000000000000.00")

    response = api_client.post(ORDERS_URL, payload, format="json")

    assert response.status_code == 201
    assert response.json()["total_amount"] == "1000000000000.00"
    assert OrderItem.objects.count() == 100


def test_create_writes_exactly_one_order_created_event_matching_the_contract(api_client):
    # when an order is created with a trace context
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = api_client.post(
        ORDERS_URL, {**SEED_PAYLOAD, "shipping_address": "1 Main St"}, format="json", HTTP_TRACEPARENT=traceparent
    )

    # then one order.created row carries the order as the contract says
    assert response.status_code == 201
    order = Order.objects.get()
    event = OutboxEvent.objects.get()
    assert (event.event_type, event.topic, event.key, event.status) == (
        "order.created",
        "order.created",
        "user123",
        "pending",
    )
    assert event.payload == {
        "event_id": str(event.event_id),
        "event_type": "order.created",
        "timestamp": rfc3339(event.created_at),
        "version": "1.0",
        "data": {
            "order_id": str(order.id),
            "user_id": "user123",
            "status": "pending",
            "order_version": 1,
            "total_amount": "99.98",
            "currency": "USD",
            "shipping_address": "1 Main St",
            "items": [{"product_id": "prod1", "quantity": 2, "price": "49.99"}],
            "created_at": rfc3339(order.created_at),
        },
    }
    # and its traceparent is the request's span: the caller's trace, this request's span id (as returned)
    assert event.headers == {
        "event_id": str(event.event_id),
        "event_type": "order.created",
        "traceparent": response["traceparent"],
    }
    assert response["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert response["traceparent"] != traceparent
