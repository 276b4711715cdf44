"""The customer's name and email on an order: only for staff and clients allowed to see them."""

import pytest

from orders.tests.factories import OrderFactory, UserFactory, bind, grant
from tests.support.api import cached_user, order_url, token_client

pytestmark = pytest.mark.django_db

ADA = {"name": "Ada Lovelace", "email": "ada@example.com"}


def test_a_client_without_the_permission_gets_the_order_with_customer_null(api_client):
    # given an order of a customer the user cache knows
    order = OrderFactory.create(user_id=cached_user(**ADA))

    # when a service client without the PII permission reads it
    response = api_client.get(order_url(order.id))

    # then it gets the order, but not who the customer is
    assert response.status_code == 200
    assert response.json()["id"] == str(order.id)
    assert response.json()["customer"] is None


def test_a_bound_client_without_the_permission_does_not_see_its_customers_name_either():
    customer = cached_user(**ADA)
    order = OrderFactory.create(user_id=customer)
    client = token_client(bind(UserFactory.create(), customer))

    response = client.get(order_url(order.id))

    assert (response.status_code, response.json()["customer"]) == (200, None)


def test_a_client_with_the_permission_sees_name_and_email():
    order = OrderFactory.create(user_id=cached_user(**ADA))
    client = token_client(grant(UserFactory.create(), "act_for_any_customer", "view_customer_pii"))

    response = client.get(order_url(order.id))

    assert response.json()["customer"] == ADA


def test_staff_see_name_and_email(staff_client):
    order = OrderFactory.create(user_id=cached_user(**ADA))

    response = staff_client.get(order_url(order.id))

    assert response.json()["customer"] == ADA


def test_the_schema_says_when_customer_is_null(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()

    customer = schema["components"]["schemas"]["OrderDetail"]["properties"]["customer"]
    assert "orders.view_customer_pii" in customer["description"]
