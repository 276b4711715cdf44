"""GET list, detail and history; PUT/PATCH/DELETE are not offered."""

import datetime as dt

import pytest

from orders.services import order_cancel
from orders.tests.factories import OrderFactory
from orders_project.rfc3339 import rfc3339
from tests.support.api import ORDERS_URL, SEED_CUSTOMER, order_url

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


def _ids(response):
    return [row["id"] for row in response.json()["data"]]


def test_list_returns_the_list_shape_newest_first(api_client, user):
    # given three orders created a day apart
    old, mid, new = (OrderFactory.create(created_by=user, created_at=T0 + dt.timedelta(days=n)) for n in range(3))

    # when the list is read
    response = api_client.get(ORDERS_URL)

    # then the newest comes first, in the {count,next,previous,data} shape
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["count", "next", "previous", "data"]
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert _ids(response) == [str(new.id), str(mid.id), str(old.id)]
    assert body["data"][0]["created_at"] == "2026-01-12T12:00:00.000000Z"


def test_list_filters_by_status(api_client, user):
    pending = OrderFactory.create(created_by=user)
    cancelled = OrderFactory.create(created_by=user, status="cancelled")
    OrderFactory.create(created_by=user, status="shipped")

    assert _ids(api_client.get(ORDERS_URL, {"status": "pending"})) == [str(pending.id)]
    assert _ids(api_client.get(ORDERS_URL, {"status": "cancelled"})) == [str(cancelled.id)]


def test_list_filters_by_user_id(api_client, user):
    wanted = OrderFactory.create(created_by=user, user_id="user123")
    OrderFactory.create(created_by=user, user_id="user1234")

    response = api_client.get(ORDERS_URL, {"user_id": "user123"})

    assert _ids(response) == [str(wanted.id)]


def test_list_filters_by_creation_time_after_inclusive_before_exclusive(api_client, user):
    day1, day2, day3 = (OrderFactory.create(created_by=user, created_at=T0 + dt.timedelta(days=n)) for n in range(3))
    after = rfc3339(T0 + dt.timedelta(days=1))
    before = rfc3339(T0 + dt.timedelta(days=2))

    assert _ids(api_client.get(ORDERS_URL, {"created_after": after})) == [str(day3.id), str(day2.id)]
    assert _ids(api_client.get(ORDERS_URL, {"created_before": before})) == [str(day2.id), str(day1.id)]
    assert _ids(api_client.get(ORDERS_URL, {"created_after": after, "created_before": before})) == [str(day2.id)]


def test_list_pages_with_skip_and_limit(api_client, user):
    # given five orders
    orders = [OrderFactory.create(created_by=user, created_at=T0 + dt.timedelta(minutes=n)) for n in range(5)]
    newest_first = [str(o.id) for o in reversed(orders)]

    # when the middle page is read
    response = api_client.get(ORDERS_URL, {"skip": 2, "limit": 2})

    # then it holds the 3rd and 4th newest and links both ways
    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 5
    assert _ids(response) == newest_first[2:4]
    assert body["next"] == "http://testserver/api/v1/orders/?limit=2&skip=4"
    assert body["previous"] == "http://testserver/api/v1/orders/?limit=2"


def test_list_default_limit_is_20_and_100_is_allowed(api_client, user):
    for _ in range(21):
        OrderFactory.create(created_by=user, items=[])

    default = api_client.get(ORDERS_URL).json()
    largest = api_client.get(ORDERS_URL, {"limit": 100}).json()

    assert (default["count"], len(default["data"])) == (21, 20)
    assert default["next"] == "http://testserver/api/v1/orders/?limit=20&skip=20"
    assert (largest["count"], len(largest["data"]), largest["next"]) == (21, 21, None)


@pytest.mark.parametrize(
    ("params", "details"),
    [
        ({"limit": 0}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ({"limit": 101}, {"limit": ["Ensure this value is less than or equal to 100."]}),
        ({"limit": -1}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ({"limit": "abc"}, {"limit": ["A valid integer is required."]}),
        ({"skip": -1}, {"skip": ["Ensure this value is greater than or equal to 0."]}),
        ({"skip": "abc"}, {"skip": ["A valid integer is required."]}),
        ({"status": "lost"}, {"status": ["Select a valid choice. lost is not one of the available choices."]}),
        ({"created_after": "yesterday"}, {"created_after": ["Enter a valid date/time."]}),
        ({"created_before": "2026-13-01"}, {"created_before": ["Enter a valid date/time."]}),
        ({"user_id": "u" * 65}, {"user_id": ["Ensure this value has at most 64 characters (it has 65)."]}),
    ],
)
def test_list_rejects_bad_parameters_with_400_naming_them(api_client, params, details):
    response = api_client.get(ORDERS_URL, params)

    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "details": details,
    }


def test_detail_returns_the_order(api_client, user):
    order = OrderFactory.create(created_by=user, status="confirmed")

    response = api_client.get(order_url(order.id))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["version"]) == (str(order.id), "confirmed", 2)
    assert body["total_amount"] == f"{order.total_amount:.2f}"
    assert body["items"] == [
        {"product_id": i.product_id, "quantity": i.quantity, "price": f"{i.price:.2f}"} for i in order.items.all()
    ]
    assert body["confirmed_at"] == rfc3339(order.confirmed_at)


@pytest.mark.parametrize("order_id", ["8d3c1f1e-0000-4000-8000-000000000000", "not-a-uuid"])
def test_detail_of_an_unknown_order_is_404(api_client, order_id):
    response = api_client.get(order_url(order_id))

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "details": {}}


def test_history_has_one_row_per_change_oldest_first(api_client, user):
    # given an order that went pending -> confirmed -> shipped
    order = OrderFactory.create(created_by=user, status="shipped")
    rows = list(order.history.all())

    # when its history is read
    response = api_client.get(order_url(order.id, "history"))

    # then there is one row per change, with who (as a role: the client is not staff) and when
    assert response.status_code == 200
    assert response.json() == [
        {
            "order_version": 1,
            "from_status": "",
            "to_status": "pending",
            "changed_at": rfc3339(rows[0].changed_at),
            "changed_by": "customer",
            "reason": "",
        },
        {
            "order_version": 2,
            "from_status": "pending",
            "to_status": "confirmed",
            "changed_at": rfc3339(rows[1].changed_at),
            "changed_by": "system",
            "reason": "",
        },
        {
            "order_version": 3,
            "from_status": "confirmed",
            "to_status": "shipped",
            "changed_at": rfc3339(rows[2].changed_at),
            "changed_by": "system",
            "reason": "",
        },
    ]


def test_history_names_staff_to_staff_only_and_shows_clients_a_role(customer_client, customer_user, staff_client):
    # given an order of the bound client's customer, created through the API and cancelled by
    # an admin, and one cancelled by the process that follows user deletions
    order = OrderFactory.create(created_by=customer_user, user_id=SEED_CUSTOMER)
    order_cancel(order_id=order.id, reason="cancelled_by_staff", changed_by="staff:night-admin")
    deleted = OrderFactory.create(created_by=customer_user, user_id=SEED_CUSTOMER)
    order_cancel(order_id=deleted.id, reason="user_deleted", changed_by="consumer:user-events")

    # when the bound client and staff read the histories
    seen_by_client = customer_client.get(order_url(order.id, "history"))
    seen_by_staff = staff_client.get(order_url(order.id, "history"))
    deleted_seen_by_client = customer_client.get(order_url(deleted.id, "history"))

    # then the client sees roles, never the admin's login; staff see who exactly
    assert [row["changed_by"] for row in seen_by_client.json()] == ["customer", "staff"]
    assert "night-admin" not in seen_by_client.content.decode()
    assert [row["changed_by"] for row in seen_by_staff.json()] == ["client:carol", "staff:night-admin"]
    assert [row["changed_by"] for row in deleted_seen_by_client.json()] == ["customer", "system"]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_detail_refuses_put_patch_delete_with_405(api_client, user, method):
    order = OrderFactory.create(created_by=user)

    response = getattr(api_client, method)(order_url(order.id), {"status": "shipped"}, format="json")

    assert response.status_code == 405
    assert response.json() == {
        "code": "method_not_allowed",
        "message": f'Method "{method.upper()}" not allowed.',
        "details": {},
    }
    order.refresh_from_db()
    assert (order.status, order.version) == ("pending", 1)


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_list_refuses_put_patch_delete_with_405(api_client, method):
    response = getattr(api_client, method)(ORDERS_URL, {}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
