"""A web process answers a token's lookup from memory (orders.api.token_cache) only while
nothing that decides it changed: every change through Django ends it on the next request,
a change past Django at most AUTH_TOKEN_CACHE_SECONDS later, and with Redis down every
request looks its token up."""

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_redis import get_redis_connection
from knox.models import AuthToken

from devstack.procs import free_port
from orders.api import token_cache
from orders.models import ApiClient
from orders.tests.factories import OrderFactory, UserFactory, bind, grant
from tests.support.api import ORDERS_URL, cached_user, order_url, token_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("token_cache_on")]


def _lookups(client: Any) -> tuple[int, int]:
    """(status, token lookups) of one list request."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ORDERS_URL)
    table = AuthToken._meta.db_table
    return response.status_code, sum(f"FROM {table}" in query["sql"] for query in queries.captured_queries)


@pytest.fixture
def client_and_user() -> tuple[Any, Any]:
    user = grant(get_user_model().objects.create_user(username="cached-client", password="x"), "act_for_any_customer")
    return token_client(user), user


def test_a_token_is_looked_up_once_and_then_answered_from_memory(client_and_user):
    client, _ = client_and_user

    assert _lookups(client) == (200, 1)
    assert _lookups(client) == (200, 0)
    assert _lookups(client) == (200, 0)


def test_a_revoked_token_is_refused_on_the_next_request(client_and_user, django_capture_on_commit_callbacks):
    client, user = client_and_user
    _lookups(client)
    assert _lookups(client) == (200, 0)  # from memory

    with django_capture_on_commit_callbacks(execute=True):
        call_command("revoke_api_tokens", user.username)

    assert _lookups(client) == (401, 1)


def test_a_deactivated_client_is_refused_on_the_next_request(client_and_user, django_capture_on_commit_callbacks):
    client, user = client_and_user
    _lookups(client)

    user.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        user.save()

    assert _lookups(client) == (401, 1)


def test_a_permission_or_binding_changed_moves_the_scope_on_the_next_request(
    client_and_user, django_capture_on_commit_callbacks
):
    client, user = client_and_user
    OrderFactory.create(user_id="customer-1", items=[])
    OrderFactory.create(user_id="customer-2", items=[])
    assert client.get(ORDERS_URL).json()["count"] == 2
    assert _lookups(client) == (200, 0)

    # the permission taken away (an m2m change): a client bound to nobody sees nothing
    with django_capture_on_commit_callbacks(execute=True):
        user.user_permissions.clear()
    assert client.get(ORDERS_URL).json()["count"] == 0

    # bound to one customer: that customer's orders
    with django_capture_on_commit_callbacks(execute=True):
        bind(user, "customer-1")
    assert client.get(ORDERS_URL).json()["count"] == 1

    # the binding moved
    with django_capture_on_commit_callbacks(execute=True):
        ApiClient.objects.filter(user=user).get().delete()
        bind(user, "customer-2")
    assert [row["user_id"] for row in client.get(ORDERS_URL).json()["data"]] == ["customer-2"]


def test_the_customer_pii_permission_granted_or_taken_shows_on_the_next_request(
    client_and_user, django_capture_on_commit_callbacks
):
    client, user = client_and_user
    order = OrderFactory.create(user_id=cached_user(name="Ada", email="ada@example.com"), items=[])
    assert client.get(order_url(order.id)).json()["customer"] is None
    assert _lookups(client) == (200, 0)  # from memory

    with django_capture_on_commit_callbacks(execute=True):
        grant(user, "view_customer_pii")
    assert client.get(order_url(order.id)).json()["customer"] == {"name": "Ada", "email": "ada@example.com"}

    with django_capture_on_commit_callbacks(execute=True):
        user.user_permissions.remove(Permission.objects.get(codename="view_customer_pii"))
    assert client.get(order_url(order.id)).json()["customer"] is None


def test_a_change_past_django_is_seen_once_the_cache_seconds_are_over(client_and_user, monkeypatch):
    client, user = client_and_user
    _lookups(client)

    # an update() sends no signal: the rows in memory are still served ...
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert _lookups(client) == (200, 0)

    # ... until their seconds are over
    now = token_cache.time.monotonic()
    monkeypatch.setattr(token_cache.time, "monotonic", lambda: now + 6)
    assert _lookups(client) == (401, 1)


def test_rows_kept_under_an_epoch_redis_lost_are_never_served_again(client_and_user):
    client, _ = client_and_user
    _lookups(client)
    redis = get_redis_connection("default")

    # a Redis restart loses the epoch: no cache until a new, random one is started
    redis.delete(token_cache.EPOCH_KEY)
    assert _lookups(client) == (200, 1)
    assert redis.get(token_cache.EPOCH_KEY) is not None
    assert _lookups(client) == (200, 1)  # the rows were read before the new epoch started
    assert _lookups(client) == (200, 0)


def test_with_redis_down_every_request_looks_its_token_up(client_and_user, settings, monkeypatch):
    client, _ = client_and_user
    _lookups(client)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": nowhere}}
    starts: list[None] = []
    monkeypatch.setattr(token_cache, "epoch_missing", lambda: starts.append(None))

    assert _lookups(client) == (200, 1)
    assert _lookups(client) == (200, 1)
    # an unreachable Redis is not asked a second time to start an epoch
    assert starts == []


def test_a_cache_of_zero_seconds_looks_every_token_up(client_and_user, settings):
    client, _ = client_and_user
    settings.AUTH_TOKEN_CACHE_SECONDS = 0

    assert _lookups(client) == (200, 1)
    assert _lookups(client) == (200, 1)


def test_another_clients_token_is_never_answered_with_these_rows():
    first, second = (token_client(grant(UserFactory.create(), "act_for_any_customer")) for _ in range(2))
    stranger = token_client(UserFactory.create())
    OrderFactory.create(items=[])

    counts = [client.get(ORDERS_URL).json()["count"] for client in (first, second, stranger, first, stranger)]

    assert counts == [1, 1, 0, 1, 0]
