"""Three relays at once, each with its own producer and database connection, while events are
still being written: every event reaches Kafka once, and each key's events in the order written."""

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connections, transaction

from orders_project.kafka import producer_new
from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_run
from outbox.services import event_enqueue
from tests.support.outbox import all_published, by_key, consume

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

EVENTS = 3000
KEYS = 60
RELAYS = 3
# Smaller than the 60 keys, so each batch locks only part of them and the relays truly work side by side.
BATCH_SIZE = 25
WRITE_TRANSACTION_SIZE = 100
DEADLINE_SECONDS = 90


def test_three_relays_at_once_deliver_every_event_once_and_in_writing_order_per_key(event_topic):
    # given keys written interleaved, in random order, by one writer in transactions of 100
    keys = [f"user-{n:02d}" for n in range(KEYS)] * (EVENTS // KEYS)
    random.Random(20261125).shuffle(keys)
    start = threading.Barrier(RELAYS + 1)
    writing_done = threading.Event()
    errors: list[BaseException] = []
    published = [0] * RELAYS

    def writer() -> None:
        try:
            start.wait(timeout=30)
            for first in range(0, EVENTS, WRITE_TRANSACTION_SIZE):
                with transaction.atomic():
                    for seq in range(first, first + WRITE_TRANSACTION_SIZE):
                        event_enqueue(event_type="order.created", key=keys[seq], data={"seq": seq})
        except BaseException as exc:
            errors.append(exc)
        finally:
            writing_done.set()
            connections.close_all()

    def relay(n: int) -> None:
        producer = producer_new()
        try:
            start.wait(timeout=30)
            deadline = time.monotonic() + DEADLINE_SECONDS
            while time.monotonic() < deadline:
                result = relay_run(producer=producer, batch_size=BATCH_SIZE, time_budget=2)
                published[n] += result.published
                if writing_done.is_set() and not OutboxEvent.objects.filter(status=OutboxStatus.PENDING).exists():
                    break
                if not result.batches:
                    time.sleep(0.01)  # poll interval while the other relays hold every due key
        except BaseException as exc:
            errors.append(exc)
        finally:
            producer.close(timeout=5)
            connections.close_all()

    # when three relays start together with the writer
    threads = [threading.Thread(target=writer)] + [threading.Thread(target=relay, args=(n,)) for n in range(RELAYS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS + 30)

    # then every row is published, each by exactly one relay, and every relay did part of the work
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    assert OutboxEvent.objects.count() == EVENTS
    assert all_published()
    assert sum(published) == EVENTS
    assert all(count > 0 for count in published), published

    # and Kafka holds every event exactly once
    rows = list(OutboxEvent.objects.order_by("id").values_list("event_id", "key", "payload"))
    messages = consume(event_topic, [str(event_id) for event_id, _, _ in rows], timeout=60)
    assert Counter(m.event_id for m in messages) == Counter(str(event_id) for event_id, _, _ in rows)

    # and for every key, the order on Kafka is the order of writing
    seq_by_id = {str(event_id): payload["data"]["seq"] for event_id, _, payload in rows}
    on_kafka = {key: [seq_by_id[event_id] for event_id in ids] for key, ids in by_key(messages).items()}
    written = {key: [seq for seq in range(EVENTS) if keys[seq] == key] for key in set(keys)}
    assert len(written) == KEYS
    assert on_kafka == written
