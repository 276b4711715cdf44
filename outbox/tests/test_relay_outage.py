"""A broker that goes away: rows stay pending with attempts, error and backoff recorded, none dies;
when it is back every row is delivered, in order per key. The link is cut by a TCP proxy in front
of a Tansu of the test's own, which advertises the proxy so no connection bypasses it."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orders_project.kafka import topics_create
from outbox.models import OutboxEvent, OutboxStatus
from outbox.producer import producer_discard, producer_get
from outbox.relay import relay_run
from tests.support.outbox import all_published, by_key, consume, enqueue, relay_until
from tests.support.relays import in_thread
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

KEYS = ["k0", "k1", "k2", "k3"]


@pytest.fixture(autouse=True)
def short_kafka_waits(settings) -> None:
    """Requests answered within 2 s or given up (production: 5 s), so the relay's wait for
    acknowledgements that never come is 4 s rather than 10; the producer is made again with it."""
    settings.KAFKA_REQUEST_TIMEOUT_MS = 2000
    producer_discard()


def test_an_outage_leaves_rows_pending_with_backoff_and_none_is_lost_when_the_broker_is_back(
    proxied_kafka, unique_topics, settings
):
    # given short backoff, and a single allowed attempt: an outage must not kill rows even so
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 0.2
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 0.4
    settings.OUTBOX_MAX_RETRY_ATTEMPTS = 1
    topics_create(partitions=3, replication_factor=1)
    topic = unique_topics["order.created"]
    # and a relay whose producer is connected and delivering
    before_outage = [enqueue(KEYS[n % 4], {"n": n}) for n in range(8)]
    relay_until(all_published)

    # when the link to the broker is cut and more events are written
    proxied_kafka.proxy.cut()
    during = [enqueue(KEYS[n % 4], {"n": n}) for n in range(8, 20)]
    started, started_at = time.monotonic(), timezone.now()
    result = relay_run()
    elapsed, ended_at = time.monotonic() - started, timezone.now()

    # then the run gives up within its bounded timeouts, publishing nothing
    assert (result.published, result.failed) == (0, len(KEYS))
    assert elapsed < 20
    rows = list(OutboxEvent.objects.filter(id__in=[r.id for r in during]).order_by("id"))
    assert {r.status for r in rows} == {OutboxStatus.PENDING}
    assert not OutboxEvent.objects.filter(status=OutboxStatus.DEAD).exists()
    # and each key's first row records the attempt, the error and its backoff
    heads, behind = rows[: len(KEYS)], rows[len(KEYS) :]
    for head in heads:
        assert head.attempts == 1
        assert head.last_error.startswith("KafkaTimeoutError: ")
        assert started_at + timedelta(seconds=0.1) <= head.next_attempt_at <= ended_at + timedelta(seconds=0.2)
    # and the rows behind them wait untouched
    assert {(r.attempts, r.last_error) for r in behind} == {(0, "")}

    # when the broker is reachable again and the relay keeps running (as beat's sweep would)
    proxied_kafka.proxy.restore()
    relay_until(all_published)

    # then every event is on Kafka (those of the failed run perhaps twice), none lost, in order per key
    written = before_outage + during
    messages = consume(topic, [str(r.event_id) for r in written])
    assert {m.event_id for m in messages} == {str(r.event_id) for r in written}
    for key, event_ids in by_key(messages).items():
        expected = [str(r.event_id) for r in written if r.key == key]
        assert list(dict.fromkeys(event_ids)) == expected


def test_no_transaction_stays_open_while_the_relay_waits_for_kafka(proxied_kafka, unique_topics):
    # given a relay whose producer is connected, then a link that stops answering
    topics_create(partitions=3, replication_factor=1)
    enqueue("k0", {"n": 0})
    relay_until(all_published)
    proxied_kafka.proxy.cut()
    waiting = [enqueue(KEYS[n % 4], {"n": n}) for n in range(1, 9)]

    # when a relay sends them and waits for acknowledgements that do not come
    relay = in_thread(relay_run)
    wait_for(lambda: OutboxEvent.objects.filter(claimed_until__isnull=False).exists(), "the relay to lease its keys")

    # then, for as long as it waits (4 s for the acknowledgements), no session of this database
    # holds a transaction open for more than a second (the old relay held one, with row locks,
    # for the whole wait); the lease and the outcome are each a transaction of milliseconds
    # (client sessions only: autovacuum's workers also show a transaction, and take seconds
    # on a busy table)
    long_transactions: set[tuple[int, str]] = set()
    while relay.is_alive():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
                "AND now() - xact_start > interval '1 second'"
            )
            long_transactions.update(cursor.fetchall())
    relay.join()
    assert long_transactions == set()
    # and the outcome was recorded afterwards: each key's head failed, its lease given back
    rows = list(OutboxEvent.objects.filter(id__in=[r.id for r in waiting]).order_by("id"))
    assert {(r.status, r.claimed_by, r.claimed_until) for r in rows} == {(OutboxStatus.PENDING, None, None)}
    assert [r.attempts for r in rows] == [1, 1, 1, 1, 0, 0, 0, 0]


def test_a_producer_discarded_while_its_broker_stalls_ends_its_thread_and_sends_nothing_later(
    proxied_kafka, unique_topics, settings
):
    # given a producer whose records outlive its close's wait (delivery 10 s, close 5 s), as when
    # the relay gives up at the end of its lease, with a record in flight to a stalled broker
    settings.KAFKA_REQUEST_TIMEOUT_MS = 5000
    topics_create(partitions=1, replication_factor=1)
    topic = unique_topics["order.created"]
    before = set(threading.enumerate())
    producer = producer_get()
    producer.send(topic, b"warm-up").get(timeout=10)
    proxied_kafka.proxy.stall()
    try:
        late = producer.send(topic, b"in flight")

        # when it is discarded (as the relay does after a failed batch)
        producer_discard()

        # then its thread ends, its record failed, so nothing is delivered once the broker answers
        # again (kafka-python's own close() raised here and left the thread sending)
        def producer_threads() -> list[str]:
            left = set(threading.enumerate()) - before
            return [thread.name for thread in left if thread.is_alive() and thread.name.startswith("order-service")]

        wait_for(lambda: producer_threads() == [], "the producer's network thread to end", timeout=10)
        assert late.is_done and late.failed()
    finally:
        proxied_kafka.proxy.resume()
