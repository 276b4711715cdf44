"""Two creates with one Idempotency-Key at once: one order, and both answer with it.

transaction=True and real threads: each request commits (or rolls back) on its
own connection, as under a real server.
"""

import threading

import pytest
from django.db import connections

from orders import services
from orders.models import IdempotencyKey, Order
from orders.tests.factories import SEED_PAYLOAD
from outbox.models import OutboxEvent
from tests.support.api import ORDERS_URL
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "slow-first-request"


def test_a_slow_first_request_overtaken_by_a_retry_rolls_back_and_replays_the_retrys_answer(
    user, client_for, monkeypatch
):
    # given a first request that will stop inside its transaction, right after inserting its
    # order (before storing its key), until the test lets it go on
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

    # when a retry with the same key arrives meanwhile (it finds no key: it does the work)
    second = client_for(user).post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    # and then the first request goes on and tries to store its key
    let_first_finish.set()
    first.join(timeout=30)

    # then the retry created the one order, and the first found the key taken, rolled its
    # own order back and answered with the retry's response
    assert not first.is_alive()
    assert second.status_code == 201
    assert (first_responses[0].status_code, first_responses[0].json()) == (201, second.json())
    assert first_responses[0]["Location"] == second["Location"]
    assert [str(pk) for pk in Order.objects.values_list("id", flat=True)] == [second.json()["id"]]
    assert OutboxEvent.objects.count() == 1
    stored = IdempotencyKey.objects.get()
    assert (stored.status, stored.response_status, stored.response_body) == ("completed", 201, second.json())

    # and a third try with the key replays the same response
    third = client_for(user).post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert (third.status_code, third.json()) == (201, second.json())
