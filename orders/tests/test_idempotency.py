"""Idempotency-Key on POST /api/v1/orders/: replay, reuse, in progress, per client."""

import datetime as dt

import pytest
from django.utils import timezone

from orders.models import IdempotencyKey, Order
from orders.tests.factories import SEED_PAYLOAD, OrderFactory, older_release_claim
from outbox.models import OutboxEvent
from tests.support.api import ORDERS_URL

pytestmark = pytest.mark.django_db

KEY = "3f0c8a52-order-key"


def _post(client, body=SEED_PAYLOAD, key=KEY):
    return client.post(ORDERS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_same_body_replays_the_first_response_and_creates_nothing(api_client):
    # given a first request with a key
    first = _post(api_client)

    # when the same request is sent again, keys in another order
    second = _post(api_client, dict(reversed(list(SEED_PAYLOAD.items()))))

    # then the second gets the first answer, and there is still one order and one event
    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Location"] == first["Location"]
    assert Order.objects.count() == 1
    assert OutboxEvent.objects.count() == 1
    stored = IdempotencyKey.objects.get()
    assert (stored.status, stored.response_status, stored.response_body) == ("completed", 201, first.json())


def test_same_key_different_body_is_422(api_client):
    _post(api_client)

    response = _post(api_client, {**SEED_PAYLOAD, "user_id": "user456"})

    assert response.status_code == 422
    assert response.json() == {
        "code": "idempotency_key_reused",
        "message": "This Idempotency-Key was already used with a different request body.",
        "details": {},
    }
    assert list(Order.objects.values_list("user_id", flat=True)) == ["user123"]


def test_a_request_while_an_older_releases_claim_is_in_progress_is_409(api_client, user):
    # given a request served by an older release (during a rolling update) has claimed the key
    older_release_claim(client_id=user.pk, key=KEY)

    # when the same request arrives
    response = _post(api_client)

    # then it is told to retry later, and the first request keeps its claim
    assert response.status_code == 409
    assert response.json() == {
        "code": "idempotency_key_in_progress",
        "message": "A request with this Idempotency-Key is still being processed; retry later.",
        "details": {},
    }
    assert Order.objects.count() == 0
    assert IdempotencyKey.objects.get().status == "in_progress"


def test_an_older_releases_claim_abandoned_for_over_five_minutes_is_taken_over(api_client, user):
    # given an older release's claim whose process died six minutes ago
    older_release_claim(client_id=user.pk, key=KEY, age=dt.timedelta(minutes=6))

    response = _post(api_client)

    assert response.status_code == 201
    assert Order.objects.count() == 1
    assert IdempotencyKey.objects.get().status == "completed"


def test_a_key_older_than_24_hours_is_forgotten(api_client):
    # given a completed request with the key a day and a minute ago
    first = _post(api_client)
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=24, minutes=1))

    # when the same request is sent again
    second = _post(api_client)

    # then it is a new request
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert Order.objects.count() == 2


def test_keys_are_per_client(api_client, other_client):
    first = _post(api_client)
    second = _post(other_client)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert Order.objects.count() == 2
    assert IdempotencyKey.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"user_id": "user123", "total_amount": 99.99}', "application/json", 400),
        ('{"user_id": ', "application/json", 400),
        ("user_id=user123", "application/x-www-form-urlencoded", 415),
    ],
    ids=["invalid-fields", "malformed-json", "not-json"],
)
def test_an_invalid_request_does_not_burn_the_key(api_client, body, content_type, status):
    # given a refused request with a key
    refused = api_client.post(ORDERS_URL, body, content_type=content_type, HTTP_IDEMPOTENCY_KEY=KEY)
    assert refused.status_code == status
    assert IdempotencyKey.objects.count() == 0

    # when a corrected request is sent with the same key
    response = _post(api_client)

    # then it is processed normally
    assert response.status_code == 201
    assert Order.objects.count() == 1


def test_a_request_failing_on_a_database_error_releases_the_key(api_client, settings):
    # given the outbox insert will be refused by PostgreSQL (a topic name longer than its column)
    existing = OrderFactory.create()
    topics = settings.KAFKA_TOPICS
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "order.created": "t" * 250}

    failed = _post(api_client)

    assert failed.status_code == 500
    assert failed.json()["code"] == "internal_error"
    assert list(Order.objects.values_list("id", flat=True)) == [existing.id]
    assert IdempotencyKey.objects.count() == 0

    # when the fault is gone, a retry with the same key succeeds
    settings.KAFKA_TOPICS = topics
    retried = _post(api_client)
    assert retried.status_code == 201
    assert Order.objects.count() == 2


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_a_key_of_bad_length_is_400_naming_the_header(api_client, key):
    response = _post(api_client, key=key)

    assert response.status_code == 400
    assert response.json()["details"] == {"Idempotency-Key": ["Must be 1 to 255 characters."]}
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "key",
    ["a\x00b", "a\nb", "\t", "a\x1fb", "a\x7fb", "caf\u00e9"],
    ids=["NUL", "newline", "tab", "unit-separator", "DEL", "latin-1"],
)
def test_a_key_with_control_or_non_ascii_characters_is_400_naming_the_header(api_client, key):
    # PostgreSQL refuses NUL in text: before the check this was a DataError and a 500
    response = _post(api_client, key=key)

    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "The request has invalid fields.",
        "details": {"Idempotency-Key": ["Must be printable ASCII, no control characters."]},
    }
    assert IdempotencyKey.objects.count() == 0
    assert Order.objects.count() == 0


def test_a_key_of_printable_ascii_with_spaces_and_punctuation_is_accepted(api_client):
    response = _post(api_client, key="order:2026/11 #1~")

    assert response.status_code == 201
    assert IdempotencyKey.objects.get().key == "order:2026/11 #1~"
