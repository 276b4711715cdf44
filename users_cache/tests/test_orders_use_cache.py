"""The order API and the user cache: refuse unknown, inactive and deleted users,
answer 503 when Redis is down, and show the cached customer on an order."""

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from orders.models import Order
from orders.tests.factories import SEED_PAYLOAD, OrderFactory, UserFactory, grant
from outbox.models import OutboxEvent
from tests.support.api import ORDERS_URL, order_url, token_client
from tests.support.users import at, ms, order_for, users_unreachable
from users_cache.store import event_apply

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_user() -> Any:
    """A service client (orders for any customer) that may also see customers' names and emails."""
    return grant(UserFactory.create(username="shop"), "act_for_any_customer", "view_customer_pii")


@pytest.fixture
def api(client_user: Any) -> APIClient:
    return token_client(client_user)


@pytest.fixture(autouse=True)
def require_known_user(settings: Any) -> None:
    settings.ORDER_REQUIRE_KNOWN_USER = True  # the production default; the test settings turn it off


@pytest.fixture
def redis_down(settings: Any) -> None:
    """Point the cache at a real closed port (connection refused), as in an outage."""
    settings.CACHES = users_unreachable(settings.CACHES)


def _cache(user_id: str, kind: str = "created", seconds: float = 0, **fields: str) -> None:
    given = {"user_id": user_id}
    if kind == "created":
        given |= {"email": f"{user_id}@example.com", "name": f"Name {user_id}", "status": "active"}
    outcome = event_apply(
        event_id=str(uuid.uuid4()),
        user_id=user_id,
        kind=kind,
        timestamp_ms=ms(at(seconds)),
        fields={**given, **fields},
    )
    assert outcome == "applied"


def _create(api: APIClient, user_id: str, **headers: str) -> Any:
    return api.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": user_id}, format="json", headers=headers)


def _nothing_written() -> bool:
    return not Order.objects.exists() and not OutboxEvent.objects.exists()


def test_known_active_user_can_order(api: APIClient) -> None:
    _cache("u1")

    response = _create(api, "u1")

    assert response.status_code == 201
    assert Order.objects.get().user_id == "u1"


def test_unknown_user_gets_422_user_not_found_and_nothing_is_written(api: APIClient) -> None:
    response = _create(api, "stranger")

    assert response.status_code == 422
    assert response.json() == {
        "code": "user_not_found",
        "message": "User 'stranger' is not known to this service.",
        "details": {},
    }
    assert _nothing_written()


def test_inactive_user_gets_422_user_inactive(api: APIClient) -> None:
    _cache("u1")
    _cache("u1", kind="updated", seconds=10, status="inactive")

    response = _create(api, "u1")

    assert response.status_code == 422
    assert response.json()["code"] == "user_inactive"
    assert _nothing_written()


@pytest.mark.parametrize("require_known", [True, False])
def test_deleted_user_gets_422_whatever_the_unknown_user_setting(
    api: APIClient, settings: Any, require_known: bool
) -> None:
    settings.ORDER_REQUIRE_KNOWN_USER = require_known
    _cache("u1")
    _cache("u1", kind="deleted", seconds=10)

    response = _create(api, "u1")

    assert response.status_code == 422
    assert response.json() == {"code": "user_not_found", "message": "User 'u1' has been deleted.", "details": {}}
    assert _nothing_written()


def test_require_known_user_off_lets_an_unknown_user_through(api: APIClient, settings: Any) -> None:
    settings.ORDER_REQUIRE_KNOWN_USER = False

    response = _create(api, "stranger")

    assert response.status_code == 201
    assert Order.objects.get().user_id == "stranger"


@pytest.mark.parametrize("require_known", [True, False])
@pytest.mark.usefixtures("redis_down")
def test_redis_unreachable_gives_503_with_retry_after_and_writes_nothing(
    api: APIClient, settings: Any, require_known: bool
) -> None:
    settings.ORDER_REQUIRE_KNOWN_USER = require_known

    response = _create(api, "u1")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["code"] == "service_unavailable"
    assert _nothing_written()


def test_idempotency_key_is_free_again_after_a_503(api: APIClient, settings: Any) -> None:
    reachable = settings.CACHES
    settings.CACHES = users_unreachable(reachable)
    assert _create(api, "u1", **{"Idempotency-Key": "k-1"}).status_code == 503
    settings.CACHES = reachable
    _cache("u1")

    response = _create(api, "u1", **{"Idempotency-Key": "k-1"})

    assert response.status_code == 201
    assert Order.objects.count() == 1


def test_detail_shows_the_cached_customer(api: APIClient, client_user: Any) -> None:
    _cache("u1", name="Ada Lovelace", email="ada@example.com")
    order = OrderFactory.create(user_id="u1", created_by=client_user)

    response = api.get(order_url(order.pk))

    assert response.status_code == 200
    assert response.json()["customer"] == {"name": "Ada Lovelace", "email": "ada@example.com"}


def test_detail_shows_a_partial_update_merged_into_the_customer(api: APIClient, client_user: Any) -> None:
    _cache("u1", name="Ada", email="ada@example.com")
    _cache("u1", kind="updated", seconds=10, name="Ada L.")
    order = OrderFactory.create(user_id="u1", created_by=client_user)

    response = api.get(order_url(order.pk))

    assert response.json()["customer"] == {"name": "Ada L.", "email": "ada@example.com"}


def test_detail_customer_is_null_for_an_unknown_user(api: APIClient, client_user: Any) -> None:
    order = order_for("stranger", created_by_id=client_user.pk)  # an order from before the user was forgotten

    response = api.get(order_url(order.pk))

    assert response.status_code == 200
    assert response.json()["customer"] is None


@pytest.mark.usefixtures("redis_down")
def test_detail_still_answers_when_redis_is_down(api: APIClient, client_user: Any) -> None:
    order = order_for("u1", created_by_id=client_user.pk)  # created before the outage

    response = api.get(order_url(order.pk))

    assert response.status_code == 200
    assert response.json()["id"] == str(order.pk)
    assert response.json()["customer"] is None


def test_list_does_not_carry_the_customer(api: APIClient, client_user: Any) -> None:
    _cache("u1")
    OrderFactory.create(user_id="u1", created_by=client_user)

    response = api.get(ORDERS_URL)

    assert response.status_code == 200
    assert "customer" not in response.json()["data"][0]
