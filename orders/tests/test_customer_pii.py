"""The customer's name and email on an order: only for staff and clients allowed to see them."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

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


def test_a_client_granted_the_permission_through_a_group_sees_name_and_email():
    order = OrderFactory.create(user_id=cached_user(**ADA))
    group = Group.objects.create(name="support")
    group.permissions.add(Permission.objects.get(content_type__app_label="orders", codename="view_customer_pii"))
    user = bind(UserFactory.create(), order.user_id)
    user.groups.add(group)

    by_token = token_client(user).get(order_url(order.id))
    by_session = APIClient()
    by_session.force_authenticate(user)  # no token: the scope is read on its own

    assert by_token.json()["customer"] == ADA
    assert by_session.get(order_url(order.id)).json()["customer"] == ADA


def test_reading_an_order_asks_no_permission_query_beyond_the_token_lookup():
    # given a client allowed to see name and email
    order = OrderFactory.create(user_id=cached_user(**ADA))
    client = token_client(grant(UserFactory.create(), "act_for_any_customer", "view_customer_pii"))

    # when it reads the order
    with CaptureQueriesContext(connection) as queries:
        response = client.get(order_url(order.id))

    # then its permissions came with the token (has_perm asked two queries more on every read)
    assert response.json()["customer"] == ADA
    token_lookup = f"FROM {AuthToken._meta.db_table}"
    asked = [query["sql"] for query in queries.captured_queries if token_lookup not in query["sql"]]
    assert not [sql for sql in asked if "auth_permission" in sql], asked


def test_a_session_clients_read_asks_its_scope_once():
    # given a client without a token (the browsable API's session), allowed to see PII
    order = OrderFactory.create(user_id=cached_user(**ADA))
    client = APIClient()
    client.force_authenticate(grant(UserFactory.create(), "act_for_any_customer", "view_customer_pii"))

    # when it reads the order
    with CaptureQueriesContext(connection) as queries:
        response = client.get(order_url(order.id))

    # then one query read its scope, for the order's rows and for the PII alike
    assert response.json()["customer"] == ADA
    assert sum("auth_permission" in query["sql"] for query in queries.captured_queries) == 1


def test_staff_see_name_and_email(staff_client):
    order = OrderFactory.create(user_id=cached_user(**ADA))

    response = staff_client.get(order_url(order.id))

    assert response.json()["customer"] == ADA


def test_the_schema_says_when_customer_is_null(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()

    customer = schema["components"]["schemas"]["OrderDetail"]["properties"]["customer"]
    assert "orders.view_customer_pii" in customer["description"]
