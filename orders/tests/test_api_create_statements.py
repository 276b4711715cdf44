"""How many SQL statements one API create costs (a count is behaviour, not timing)."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.support.api import ORDERS_URL, SEED_CUSTOMER, cached_user

# transaction=True: the view's transaction is then a real one, as in production (inside
# a test's transaction it would be a SAVEPOINT pair).
pytestmark = pytest.mark.django_db(transaction=True)

# The token with its user and the client's scope (one query), BEGIN, the customer's
# advisory lock, one statement writing the order, its items, its first history row and its
# outbox event, COMMIT. Not in it, though each is easy to bring back: knox's scan of the
# user's other tokens, permission queries, savepoint pairs, an INSERT per table, a re-read
# of the order and its items.
MAX_STATEMENTS = 5
# The Idempotency-Key's lookup (one SELECT, before the transaction) and its row with the
# response (one INSERT, the transaction's last statement).
IDEMPOTENCY_STATEMENTS = 2


def _payload(user_id: str) -> dict[str, Any]:
    return {"user_id": user_id, "currency": "USD", "items": [{"product_id": "p1", "quantity": 2, "price": "4.50"}]}


def _create(client: APIClient, user_id: str, **headers: Any) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(ORDERS_URL, _payload(user_id), format="json", **headers)
    assert response.status_code == 201, response.content
    return [query["sql"] for query in queries.captured_queries]


def test_create_runs_at_most_N_statements(api_client: APIClient) -> None:
    statements = _create(api_client, cached_user())

    assert len(statements) <= MAX_STATEMENTS, "\n".join(statements)
    assert not [sql for sql in statements if "SAVEPOINT" in sql]


@pytest.mark.usefixtures("token_cache_on")
def test_a_create_with_a_token_looked_up_before_runs_one_statement_fewer(api_client: APIClient) -> None:
    # the token's lookup is kept in memory (orders.api.token_cache) until an auth change
    _create(api_client, cached_user())

    statements = _create(api_client, cached_user())

    assert len(statements) == MAX_STATEMENTS - 1, "\n".join(statements)
    assert not [sql for sql in statements if AuthToken._meta.db_table in sql]


def test_create_by_a_bound_client_runs_at_most_N_statements(customer_client: APIClient) -> None:
    statements = _create(customer_client, SEED_CUSTOMER)

    assert len(statements) <= MAX_STATEMENTS, "\n".join(statements)


def test_create_with_idempotency_key_runs_at_most_N_plus_2_statements(api_client: APIClient) -> None:
    statements = _create(api_client, cached_user(), HTTP_IDEMPOTENCY_KEY="statements-1")

    assert len(statements) <= MAX_STATEMENTS + IDEMPOTENCY_STATEMENTS, "\n".join(statements)
