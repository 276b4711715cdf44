"""PostgreSQL going away mid-request answers 503 with Retry-After, never 500.

Found by `make chaos`, scenario 3: with the service's sessions terminated
(pg_terminate_backend) and PostgreSQL restarting, creates and cancels answered
500 ("Unhandled error"), so a careful client could not tell an outage it should
retry from a bug. The session here is terminated for real, mid-request.
"""

from typing import Any

import pytest
from django.db import connection

from orders import services
from orders.models import Order
from orders.tests.factories import SEED_PAYLOAD
from tests.support.api import ORDERS_URL

pytestmark = pytest.mark.django_db(transaction=True)


def _terminate_own_session(**kwargs: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def test_create_answers_503_with_retry_after_when_the_database_session_is_terminated(api_client, monkeypatch):
    # Given PostgreSQL ends the request's session before the order is written
    monkeypatch.setattr(services, "order_customer_check", _terminate_own_session)

    # When a client creates an order
    response = api_client.post(ORDERS_URL, SEED_PAYLOAD, format="json")

    # Then it is told to retry later, in the one error shape, and nothing was written
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "code": "service_unavailable",
        "message": "The database is unavailable; retry later.",
        "details": {},
    }
    monkeypatch.undo()
    connection.close()  # the terminated session; the next query opens a new one
    assert Order.objects.count() == 0
