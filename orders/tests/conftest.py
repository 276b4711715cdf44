"""Shared fixtures: API clients of each scope (service, bound to one customer, none) and staff."""

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from orders.api import token_cache
from orders.tests.factories import StaffUserFactory, UserFactory, bind, grant
from orders_project.kafka import topics_create
from outbox.producer import producer_discard
from tests.support.api import SEED_CUSTOMER, token_client
from tests.support.outbox import TOPIC_PARTITIONS


@pytest.fixture
def token_cache_on(settings: Any) -> None:
    """Token lookups kept in memory, as in production (orders.api.token_cache): the test
    settings turn the cache off, since it forgets on commit and a test's transaction never
    commits. The epoch is started as a running service has it: the first request after a
    fresh Redis only starts one and keeps nothing, so a test's lookups would otherwise
    depend on whether a test before it, in the same worker, had sent a token."""
    settings.AUTH_TOKEN_CACHE_SECONDS = 5
    token_cache.epoch_missing()


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


@pytest.fixture
def topics(kafka_bootstrap: str, settings: Any) -> Iterator[dict[str, str]]:
    """Order topics of this test's own, created; the relay's shared producer made afresh for them."""
    suffix = uuid.uuid4().hex[:8]
    settings.KAFKA_TOPICS = {event_type: f"test.{event_type}.{suffix}" for event_type in settings.KAFKA_TOPICS}
    topics_create(partitions=TOPIC_PARTITIONS, replication_factor=1)
    producer_discard()
    yield dict(settings.KAFKA_TOPICS)
    producer_discard()
