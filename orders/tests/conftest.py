"""Shared fixtures: API clients for an ordinary client, another client and staff."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.tests.factories import StaffUserFactory, UserFactory

ORDERS_URL = "/api/v1/orders/"


def order_url(order_id: Any, action: str = "") -> str:
    return f"{ORDERS_URL}{order_id}/{action + '/' if action else ''}"


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    """An APIClient that authenticates as `user` with its DRF token, as real clients do."""

    def make(user: Any) -> APIClient:
        token, _ = Token.objects.get_or_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def user(db: None) -> Any:
    return UserFactory.create(username="alice")


@pytest.fixture
def other_user(db: None) -> Any:
    return UserFactory.create(username="bob")


@pytest.fixture
def staff_user(db: None) -> Any:
    return StaffUserFactory.create(username="ops")


@pytest.fixture
def api_client(user: Any, client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_client(other_user: Any, client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def staff_client(staff_user: Any, client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(staff_user)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()
