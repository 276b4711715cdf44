"""Who may see and do what: 401 without credentials, own orders only, staff everything."""

import pytest
from rest_framework.test import APIClient

from orders.tests.conftest import ORDERS_URL, order_url
from orders.tests.factories import SEED_PAYLOAD, OrderFactory, UserFactory
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

ORDER_ID = "8d3c1f1e-0000-4000-8000-000000000000"
ENDPOINTS = [
    ("get", "/api/v1/"),
    ("get", ORDERS_URL),
    ("post", ORDERS_URL),
    ("get", order_url(ORDER_ID)),
    ("get", order_url(ORDER_ID, "history")),
    ("post", order_url(ORDER_ID, "cancel")),
    ("put", order_url(ORDER_ID)),
    ("delete", order_url(ORDER_ID)),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_no_credentials_is_401_with_the_error_shape_everywhere(anon_client, method, url):
    response = getattr(anon_client, method)(url, SEED_PAYLOAD if method == "post" else None, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
        "details": {},
    }


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_a_bad_token_is_401_authentication_failed(method, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")

    response = getattr(client, method)(url, format="json")

    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "message": "Invalid token.", "details": {}}


def test_a_rejected_create_writes_nothing(anon_client):
    anon_client.post(ORDERS_URL, SEED_PAYLOAD, format="json")

    assert OutboxEvent.objects.count() == 0


def test_a_client_lists_only_its_own_orders(api_client, user, other_user):
    # given one order of this client and one of another
    mine = OrderFactory.create(created_by=user)
    OrderFactory.create(created_by=other_user)

    # when this client lists orders
    body = api_client.get(ORDERS_URL).json()

    # then it sees only its own
    assert body["count"] == 1
    assert [row["id"] for row in body["data"]] == [str(mine.id)]


@pytest.mark.parametrize("action", ["", "history"])
def test_another_clients_order_is_404(api_client, other_user, action):
    theirs = OrderFactory.create(created_by=other_user)

    response = api_client.get(order_url(theirs.id, action))

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "details": {}}


def test_the_customer_user_id_does_not_grant_access(api_client, user, other_user):
    # given another client's order for a customer whose id equals this client's username
    theirs = OrderFactory.create(created_by=other_user, user_id=user.username)

    assert api_client.get(order_url(theirs.id)).status_code == 404
    assert api_client.get(ORDERS_URL).json()["count"] == 0


def test_staff_see_every_order(staff_client, user, other_user):
    orders = [OrderFactory.create(created_by=user), OrderFactory.create(created_by=other_user)]

    body = staff_client.get(ORDERS_URL).json()

    assert body["count"] == 2
    assert sorted(row["id"] for row in body["data"]) == sorted(str(o.id) for o in orders)
    for order in orders:
        assert staff_client.get(order_url(order.id)).status_code == 200
        assert staff_client.get(order_url(order.id, "history")).status_code == 200


def test_session_authentication_works_too(user):
    # given a browser session instead of a token
    client = APIClient()
    client.force_login(user)
    order = OrderFactory.create(created_by=user)

    response = client.get(order_url(order.id))

    assert response.status_code == 200
    assert response.json()["id"] == str(order.id)


def test_an_order_belongs_to_the_client_that_created_it(api_client, client_for):
    # given an order created through the API by one client
    created = api_client.post(ORDERS_URL, SEED_PAYLOAD, format="json").json()
    stranger = client_for(UserFactory.create())

    # then that client reads it and a stranger does not
    assert api_client.get(order_url(created["id"])).status_code == 200
    assert stranger.get(order_url(created["id"])).status_code == 404
