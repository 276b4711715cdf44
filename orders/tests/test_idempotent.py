"""orders.idempotency.idempotent: a create's transaction with its key's row, at most once per key.

The API's behaviour with a key is in test_idempotency*.py; these call the service directly.
"""

import json
from decimal import Decimal

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from orders import services
from orders.idempotency import IdempotentRequest, StoredResponse, idempotent
from orders.models import IdempotencyKey, Order
from orders.services import ItemInput
from outbox.models import OutboxEvent

KEY = "service-level-key"


def _request(user) -> IdempotentRequest:
    return IdempotentRequest(client_id=user.pk, key=KEY, fingerprint="f" * 64)


class _Create:
    """The work: one order, answered with its id; counts its calls."""

    def __init__(self, then=None):
        self.calls = 0
        self.then = then

    def __call__(self) -> StoredResponse:
        self.calls += 1
        order = services.order_create(
            user_id="user123",
            currency="EUR",
            items=[ItemInput("prod1", 1, Decimal("9.99"))],
            changed_by="client:alice",
        )
        if self.then is not None:
            self.then()
        return StoredResponse(status=201, body={"id": str(order.id)}, location=f"/orders/{order.id}/")


@pytest.mark.django_db
def test_the_work_runs_once_per_key_and_its_response_is_replayed(user):
    work = _Create()

    first = idempotent(request=_request(user), work=work)
    again = idempotent(request=_request(user), work=work)

    assert work.calls == 1
    assert again == first
    assert [str(pk) for pk in Order.objects.values_list("id", flat=True)] == [first.body["id"]]
    stored = IdempotencyKey.objects.get()
    assert (stored.status, stored.response_body, stored.response_location) == (
        "completed",
        first.body,
        first.location,
    )


@pytest.mark.django_db
def test_work_that_fails_after_its_writes_keeps_nothing_and_the_key_stays_free(user):
    def fail() -> None:
        raise RuntimeError("after the order's rows")

    with pytest.raises(RuntimeError):
        idempotent(request=_request(user), work=_Create(then=fail))

    assert (Order.objects.count(), OutboxEvent.objects.count(), IdempotencyKey.objects.count()) == (0, 0, 0)
    # and the key is free for the retry
    retried = idempotent(request=_request(user), work=_Create())
    assert [str(pk) for pk in Order.objects.values_list("id", flat=True)] == [retried.body["id"]]


@pytest.mark.django_db(transaction=True)
def test_a_try_that_loses_its_key_rolls_its_order_back_and_replays_the_winners_response(user):
    # given another request commits its response under the key (on a connection of its own)
    # while this one's work is inside its transaction
    winner = StoredResponse(status=201, body={"id": "the other request's order"}, location="/orders/other/")

    def other_request_commits() -> None:
        other = connections.create_connection(DEFAULT_DB_ALIAS)  # autocommit: committed at once
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {IdempotencyKey._meta.db_table} (client_id, key, request_fingerprint, status,"
                    " response_status, response_body, response_location, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, now())",
                    [user.pk, KEY, "f" * 64, "completed", winner.status, json.dumps(winner.body), winner.location],
                )
        finally:
            other.close()

    work = _Create(then=other_request_commits)

    # when this request's try stores its key
    response = idempotent(request=_request(user), work=work)

    # then it found the key taken, rolled its order back and answers with the winner's response
    assert work.calls == 1
    assert response == winner
    assert (Order.objects.count(), OutboxEvent.objects.count()) == (0, 0)
    assert IdempotencyKey.objects.get().response_body == winner.body


@pytest.mark.django_db
def test_without_a_key_the_work_is_its_own_transaction_and_a_failure_keeps_nothing():
    def fail() -> None:
        raise RuntimeError("after the order's rows")

    with pytest.raises(RuntimeError):
        idempotent(request=None, work=_Create(then=fail))

    # the surrounding transaction (the test's) is still usable, and nothing was kept
    assert (Order.objects.count(), OutboxEvent.objects.count(), IdempotencyKey.objects.count()) == (0, 0, 0)
    created = idempotent(request=None, work=_Create())
    assert [str(pk) for pk in Order.objects.values_list("id", flat=True)] == [created.body["id"]]
    assert IdempotencyKey.objects.count() == 0
