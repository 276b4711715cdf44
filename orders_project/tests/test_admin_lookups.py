"""Changelist lookups from the query string are a 'bad filter' answer (`?e=1`), never a 500."""

import pytest

from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


# admin_client: pytest-django's, a Client logged in as a superuser.


@pytest.mark.parametrize(
    "url",
    [
        # PostgreSQL takes offsets up to 15:59: the value built a filter, then was a DataError
        "/admin/orders/order/?created_at__gte=2024-01-01T00:00:00%2B20:00",
        "/admin/outbox/outboxevent/?created_at__gte=2024-01-01+00:00:00-18:00",
        "/admin/orders/order/?created_at__year=99999",  # out of range when the SQL is compiled
        "/admin/orders/order/?status=%00",  # PostgreSQL text holds no NUL
        "/admin/knox/authtoken/?expiry__lt=2024-01-01T00:00:00%2B16:00",
    ],
)
def test_a_lookup_postgresql_refuses_is_the_changelists_bad_filter_answer(admin_client, url):
    OrderFactory.create()

    response = admin_client.get(url)

    assert (response.status_code, response["Location"]) == (302, url.split("?")[0] + "?e=1")
    # and the connection is still usable for the next request
    assert admin_client.get("/admin/orders/order/").status_code == 200


def test_a_good_lookup_still_filters(admin_client):
    order = OrderFactory.create(status="pending")

    response = admin_client.get("/admin/orders/order/?status=pending&created_at__gte=2000-01-01T00:00:00%2B15:59")

    assert response.status_code == 200
    assert str(order.id) in response.content.decode()
