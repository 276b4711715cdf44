"""Who may see and do what: 401 without credentials; a client acts for the customers
its scope covers (any, one, or none) and another customer's order does not exist for it."""

import pytest
from rest_framework.test import APIClient

from devstack.procs import free_port
from orders.models import Order
from orders.tests.factories import SEED_PAYLOAD, OrderFactory, UserFactory, bind
from outbox.models import OutboxEvent
from tests.support.api import ORDERS_URL, SEED_CUSTOMER, cached_user, order_url, token_client

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
FORBIDDEN = {"code": "permission_denied", "message": "This client may not act for this customer.", "details": {}}
NOT_FOUND = {"code": "not_found", "message": "Not found.", "details": {}}


def _ids(response):
    return sorted(row["id"] for row in response.json()["data"])


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


# --- a client bound to one customer ------------------------------------------


def test_a_bound_client_lists_only_its_customers_orders_whoever_created_them(customer_client, other_user):
    # given orders of this client's customer and of another, all created by another client
    mine = [OrderFactory.create(created_by=other_user, user_id=SEED_CUSTOMER) for _ in range(2)]
    OrderFactory.create(created_by=other_user, user_id="someone-else")

    # when the bound client lists orders
    response = customer_client.get(ORDERS_URL)

    # then it sees exactly its customer's orders
    assert response.json()["count"] == 2
    assert _ids(response) == sorted(str(o.id) for o in mine)


def test_a_bound_client_reads_and_cancels_its_customers_order(customer_client, other_user):
    order = OrderFactory.create(created_by=other_user, user_id=SEED_CUSTOMER)

    assert customer_client.get(order_url(order.id)).status_code == 200
    assert customer_client.get(order_url(order.id, "history")).status_code == 200
    response = customer_client.post(order_url(order.id, "cancel"), format="json")

    assert (response.status_code, response.json()["status"]) == (200, "cancelled")


@pytest.mark.parametrize(("method", "action"), [("get", ""), ("get", "history"), ("post", "cancel")])
def test_another_customers_order_is_404_for_a_bound_client(customer_client, customer_user, method, action):
    # given an order this very client created earlier, for a customer it is no longer bound to
    theirs = OrderFactory.create(created_by=customer_user, user_id="someone-else")

    response = getattr(customer_client, method)(order_url(theirs.id, action), format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert Order.objects.get(pk=theirs.id).status == "pending"


def test_a_bound_client_creates_for_its_customer(customer_client, customer_user):
    response = customer_client.post(ORDERS_URL, SEED_PAYLOAD, format="json")

    assert response.status_code == 201
    order = Order.objects.get()
    assert (order.user_id, order.created_by) == (SEED_CUSTOMER, customer_user)


def test_a_bound_client_gets_the_same_403_for_another_customer_whether_or_not_they_exist(customer_client, settings):
    # given production's rule (unknown users are refused) and one user the cache knows
    settings.ORDER_REQUIRE_KNOWN_USER = True
    known = cached_user()

    # when the bound client orders for that known user and for one nobody knows
    for_known = customer_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": known}, format="json")
    for_unknown = customer_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": "nobody-at-all"}, format="json")

    # then both answers are the same refusal (no existence oracle) and nothing is written
    assert (for_known.status_code, for_known.json()) == (403, FORBIDDEN)
    assert (for_unknown.status_code, for_unknown.json()) == (403, FORBIDDEN)
    assert (Order.objects.count(), OutboxEvent.objects.count()) == (0, 0)


def test_the_scope_is_checked_before_the_user_cache_is_asked(customer_client, settings):
    # given the user cache is down (any lookup would answer 503)
    settings.ORDER_REQUIRE_KNOWN_USER = True
    closed = f"redis://127.0.0.1:{free_port()}/1"
    settings.CACHES = {alias: {**conf, "LOCATION": closed} for alias, conf in settings.CACHES.items()}

    # when the bound client orders for another customer
    response = customer_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": "someone-else"}, format="json")

    # then it is refused by its scope alone
    assert (response.status_code, response.json()) == (403, FORBIDDEN)


# --- a client with no scope, a service client, staff --------------------------


def test_a_client_with_no_scope_creates_nothing_and_sees_nothing(unscoped_client, other_user):
    order = OrderFactory.create(created_by=other_user, user_id=SEED_CUSTOMER)

    created = unscoped_client.post(ORDERS_URL, SEED_PAYLOAD, format="json")
    listed = unscoped_client.get(ORDERS_URL)
    read = unscoped_client.get(order_url(order.id))

    assert (created.status_code, created.json()) == (403, FORBIDDEN)
    assert (listed.status_code, listed.json()["count"], listed.json()["data"]) == (200, 0, [])
    assert read.status_code == 404
    assert Order.objects.count() == 1


def test_a_service_client_acts_for_any_customer(api_client, user, other_user):
    # given orders of two customers, created by another client
    orders = [OrderFactory.create(created_by=other_user, user_id=f"cust-{n}") for n in range(2)]

    # when the service client lists, reads, cancels and creates
    listed = api_client.get(ORDERS_URL)
    read = api_client.get(order_url(orders[0].id))
    cancelled = api_client.post(order_url(orders[1].id, "cancel"), format="json")
    created = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": "cust-new"}, format="json")

    # then all of it is allowed, for every customer
    assert _ids(listed) == sorted(str(o.id) for o in orders)
    assert (read.status_code, cancelled.status_code, created.status_code) == (200, 200, 201)
    assert Order.objects.get(user_id="cust-new").created_by == user


def test_staff_see_every_order(staff_client, user, other_user):
    orders = [OrderFactory.create(created_by=user), OrderFactory.create(created_by=other_user)]

    body = staff_client.get(ORDERS_URL).json()

    assert body["count"] == 2
    assert sorted(row["id"] for row in body["data"]) == sorted(str(o.id) for o in orders)
    for order in orders:
        assert staff_client.get(order_url(order.id)).status_code == 200
        assert staff_client.get(order_url(order.id, "history")).status_code == 200


def test_session_authentication_follows_the_same_scope():
    # given a browser session of a user bound to one customer
    client = APIClient()
    client.force_login(bind(UserFactory.create(), SEED_CUSTOMER))
    mine = OrderFactory.create(user_id=SEED_CUSTOMER)
    theirs = OrderFactory.create(user_id="someone-else")

    assert client.get(order_url(mine.id)).status_code == 200
    assert client.get(order_url(theirs.id)).status_code == 404


def test_binding_a_client_to_another_customer_moves_what_it_sees(customer_user):
    # given a bound client with an order of its customer
    order = OrderFactory.create(user_id=SEED_CUSTOMER)
    client = token_client(customer_user)
    assert client.get(order_url(order.id)).status_code == 200

    # when it is bound to another customer
    bind(customer_user, "someone-else")

    # then that order is gone for it
    assert client.get(order_url(order.id)).status_code == 404
