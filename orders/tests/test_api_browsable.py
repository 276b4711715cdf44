"""The browsable API's forms start from the input serializers; the browser
test (tests/browser/test_api.py) posts them in Chromium."""

import html
import json
import re

import pytest
from django.test import Client

from orders.tests.factories import OrderFactory
from tests.support.api import ORDERS_URL, order_url

pytestmark = pytest.mark.django_db

_RAW_FORM = re.compile(r'<textarea[^>]*name="_content"[^>]*>(.*?)</textarea>', re.S)


def _raw_form(client: Client, url: str) -> dict:
    page = client.get(url, HTTP_ACCEPT="text/html")
    match = _RAW_FORM.search(page.content.decode())
    assert match, "no raw-data form on the page"
    return json.loads(html.unescape(match.group(1)))


def test_the_create_and_cancel_forms_start_from_the_fields_those_actions_take(client, user):
    client.force_login(user)
    order = OrderFactory.create()

    assert _raw_form(client, ORDERS_URL) == {
        "user_id": "",
        "currency": "",
        "items": [],
        "shipping_address": "",
        "total_amount": None,
    }
    assert _raw_form(client, order_url(order.id, "cancel")) == {"reason": "requested_by_client"}


def test_a_null_total_is_no_check_as_an_absent_one_is(api_client):
    body = {"user_id": "u1", "currency": "EUR", "items": [{"product_id": "p", "quantity": 2, "price": "1.50"}]}

    response = api_client.post(ORDERS_URL, {**body, "total_amount": None}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["total_amount"] == "3.00"
