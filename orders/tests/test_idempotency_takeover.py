"""A stale Idempotency-Key claim taken over while its first request still runs: one order, not two.

transaction=True and real threads: each request commits (or rolls back) on its
own connection, as under a real server.
"""

import datetime as dt
import threading

import pytest
from django.db import connections
from django.utils import timezone

from orders import services
from orders.models import IdempotencyKey, Order
from orders.tests.conftest import ORDERS_URL
from orders.tests.factories import SEED_PAYLOAD
from orders_project.tests.waiting import wait_for
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "slow-first-request"
STALE_SECONDS = 0.2


def test_a_slow_first_request_whose_claim_was_taken_over_rolls_back_with_409(user, client_for, settings, monkeypatch):
    # given a stale-claim window of 0.2 s and a first request that will stop inside its
    # transaction, right after inserting its order, until the test lets it go on
    settings.IDEMPOTENCY_STALE_CLAIM_SECONDS = STALE_SECONDS
    first_inside, let_first_finish = threading.Event(), threading.Event()
    create = services.order_create

    def order_create_holding_the_first(**kwargs):
        order = create(**kwargs)
        if threading.current_thread() is first:
            first_inside.set()
            let_first_finish.wait(timeout=30)
        return order

    monkeypatch.setattr(services, "order_create", order_create_holding_the_first)
    first_responses = []

    def post_first() -> None:
        try:
            first_responses.append(
                client_for(user).post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
            )
        finally:
            connections.close_all()

    first = threading.Thread(target=post_first)
    first.start()
    wait_for(first_inside.is_set, "the first request to be inside its transaction")
    claimed_at = IdempotencyKey.objects.get().created_at
    wait_for(
        lambda: timezone.now() > claimed_at + dt.timedelta(seconds=STALE_SECONDS), "the first claim to become stale"
    )

    # when a retry with the same key takes the stale claim over and completes
    second = client_for(user).post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    # and then the first request goes on and tries to complete its claim
    let_first_finish.set()
    first.join(timeout=30)

    # then the retry created the one order, and the first found its claim gone and rolled back
    assert not first.is_alive()
    assert second.status_code == 201
    assert first_responses[0].status_code == 409
    assert first_responses[0].json() == {
        "code": "idempotency_claim_lost",
        "message": "This request took so long that another request with the same Idempotency-Key took over; "
        "nothing was created by this one. Retry to get that request's response.",
        "details": {},
    }
    assert [str(pk) for pk in Order.objects.values_list("id", flat=True)] == [second.json()["id"]]
    assert OutboxEvent.objects.count() == 1
    stored = IdempotencyKey.objects.get()
    assert (stored.status, stored.response_status, stored.response_body) == ("completed", 201, second.json())

    # and a third try with the key replays the retry's response
    third = client_for(user).post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert (third.status_code, third.json()) == (201, second.json())
