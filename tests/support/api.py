"""The order API's addresses and clients as the API tests use them."""

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from orders.tests.factories import SEED_PAYLOAD, grant, token_for
from users_cache.store import event_apply

ORDERS_URL = "/api/v1/orders/"
# The customer of SEED_PAYLOAD: the one `customer_client` acts for.
SEED_CUSTOMER = SEED_PAYLOAD["user_id"]


def order_url(order_id: Any, action: str = "") -> str:
    return f"{ORDERS_URL}{order_id}/{action + '/' if action else ''}"


def token_client(user: Any) -> APIClient:
    """An APIClient that authenticates as `user` with a new API token, as real clients do."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def service_client(username: str) -> APIClient:
    """A token client for a new service client `username` (orders for any customer)."""
    user = get_user_model().objects.create_user(username=username, password="x")
    return token_client(grant(user, "act_for_any_customer"))


def cached_user(name: str = "Known User", email: str = "known@example.com") -> str:
    """A live user the user cache knows, under a fresh id (nothing else in Redis has it)."""
    user_id = f"known-{uuid.uuid4().hex[:12]}"
    fields = {"user_id": user_id, "email": email, "name": name, "status": "active"}
    outcome = event_apply(event_id=str(uuid.uuid4()), user_id=user_id, kind="created", timestamp_ms=1, fields=fields)
    assert outcome == "applied"
    return user_id


def assert_error(response: Any, status: int, code: str, details: dict[str, Any] | None = None) -> None:
    """The one error shape: {"code", "message", "details"}, as JSON, with this status and code."""
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["code", "message", "details"]
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["details"] == (details if details is not None else {})
