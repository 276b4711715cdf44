"""Shared fixtures: API clients of each scope (service, bound to one customer, none) and staff."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from orders.tests.factories import SEED_PAYLOAD, StaffUserFactory, UserFactory, bind, grant, token_for
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


def cached_user(name: str = "Known User", email: str = "known@example.com") -> str:
    """A live user the user cache knows, under a fresh id (nothing else in Redis has it)."""
    user_id = f"known-{uuid.uuid4().hex[:12]}"
    fields = {"user_id": user_id, "email": email, "name": name, "status": "active"}
    outcome = event_apply(event_id=str(uuid.uuid4()), user_id=user_id, kind="created", timestamp_ms=1, fields=fields)
    assert outcome == "applied"
    return user_id


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    return token_client


@pytest.fixture
def user(db: None) -> Any:
    """A service client: may act for any customer (most API tests are not about scopes)."""
    return grant(UserFactory.create(username="alice"), "act_for_any_customer")


@pytest.fixture
def other_user(db: None) -> Any:
    """Another service client."""
    return grant(UserFactory.create(username="bob"), "act_for_any_customer")


@pytest.fixture
def customer_user(db: None) -> Any:
    """A client bound to SEED_CUSTOMER: acts for that customer only."""
    return bind(UserFactory.create(username="carol"), SEED_CUSTOMER)


@pytest.fixture
def staff_user(db: None) -> Any:
    return StaffUserFactory.create(username="ops")


@pytest.fixture
def api_client(user: Any) -> APIClient:
    return token_client(user)


@pytest.fixture
def other_client(other_user: Any) -> APIClient:
    return token_client(other_user)


@pytest.fixture
def customer_client(customer_user: Any) -> APIClient:
    return token_client(customer_user)


@pytest.fixture
def unscoped_client(db: None) -> APIClient:
    """A client with neither a customer nor a permission: it may act for nobody."""
    return token_client(UserFactory.create(username="dave"))


@pytest.fixture
def staff_client(staff_user: Any) -> APIClient:
    return token_client(staff_user)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()
