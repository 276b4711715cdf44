"""A relay's lease is kept, not just taken: its send phase ends inside the lease, a relay past
its lease records nothing (nor clears the next holder's lease), and a failure is recorded for
any row of a leased run, not only for the key's head."""

import datetime as dt
import os
import signal
import threading
import uuid
from typing import Any

import pytest
from django.db.models.functions import Now
from django.utils import timezone

import outbox.relay as relay
from orders_project.kafka import topics_create
from outbox.claim import claim
from outbox.models import OutboxEvent, OutboxStatus
from tests.support.outbox import all_published, by_key, consume, enqueue, relay_until
from tests.support.relays import child_env, in_thread, line_of, relay_child
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

TOO_BIG = "x" * (1024 * 1024 + 1)  # over the producer's max_request_size (1 MiB): refused


def test_a_failed_row_behind_a_published_head_gets_its_attempt_and_a_later_next_attempt(event_topic, settings):
    # given a key whose head goes through, then a row Kafka refuses, then one more row
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 30
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 60
    head = enqueue("k", {"n": 0})
    refused = enqueue("k", {"blob": TOO_BIG})
    behind = enqueue("k", {"n": 2})

    # when one batch is relayed
    assert relay.relay_batch(producer=None, batch_size=100) == (1, 1)

    # then the head is published, and the refused row (not the head when leased) has its
    # attempt, its error and a next attempt in the future, so it is not retried at once
    assert OutboxEvent.objects.get(id=head.id).status == OutboxStatus.PUBLISHED
    row = OutboxEvent.objects.get(id=refused.id)
    assert (row.status, row.attempts, row.claimed_by) == (OutboxStatus.PENDING, 1, None)
    assert row.last_error.startswith("MessageSizeTooLargeError: ")
    assert OutboxEvent.objects.filter(id=refused.id, next_attempt_at__gt=Now()).exists()
    # and the row behind it waits, untried; the next batch sends nothing of the key
    assert OutboxEvent.objects.filter(id=behind.id, status=OutboxStatus.PENDING, attempts=0).exists()
    assert relay.relay_batch(producer=None, batch_size=100) is None


def test_a_lease_is_timed_by_the_databases_clock_not_the_relays(monkeypatch):
    # given a relay host whose clock runs an hour behind the database's (the application clock
    # is the only thing faked here: a skew cannot be caused for real in one host)
    enqueue("k", {"n": 0})
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - dt.timedelta(hours=1))

    # when it leases the key's head
    first = claim(100, uuid.uuid4())

    # then the lease holds on the database's clock: another relay cannot take the key
    assert [row.key for row in first] == ["k"]
    assert claim(100, uuid.uuid4()) == []
    assert OutboxEvent.objects.filter(claimed_until__gt=Now() + dt.timedelta(seconds=10)).count() == 1


def test_a_relay_whose_broker_stalls_gives_up_inside_its_lease_and_no_relay_takes_its_keys_meanwhile(
    proxied_kafka, unique_topics, settings
):
    # given a lease of 6 s, shorter than the wait for acknowledgements (10 s), a long backoff,
    # and a relay whose producer is connected and knows the topic
    settings.OUTBOX_RELAY_LEASE_SECONDS = 6
    settings.KAFKA_REQUEST_TIMEOUT_MS = 5000
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 60
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 60
    topics_create(partitions=3, replication_factor=1)
    enqueue("k0", {"n": 0})
    relay_until(all_published)
    # and a broker that stops answering, connections open (the old relay waited 10 s for it)
    proxied_kafka.proxy.stall()
    taken: list[Any] = []
    try:
        waiting = [enqueue(f"k{n % 2}", {"n": n}) for n in range(1, 5)]

        # when the relay sends them, while another relay keeps trying to claim
        sender = in_thread(relay.relay_run)
        wait_for(lambda: OutboxEvent.objects.filter(claimed_until__isnull=False).exists(), "the relay's lease")

        def taken_or_done() -> bool:
            probe = uuid.uuid4()
            taken.extend(claim(100, probe))
            OutboxEvent.objects.filter(claimed_by=probe).update(claimed_by=None, claimed_until=None)
            return bool(taken) or not sender.is_alive()

        wait_for(taken_or_done, "the relay to end, or another relay to take its keys", timeout=60)
        sender.join(30)
    finally:
        proxied_kafka.proxy.resume()

    # then no other relay got a row while the first one was sending: it gave up before its
    # lease ran out, and recorded each key's failure while the lease was still its own
    assert taken == []
    rows = list(OutboxEvent.objects.filter(id__in=[r.id for r in waiting]).order_by("id"))
    assert [(r.status, r.attempts, r.claimed_by) for r in rows] == [
        (OutboxStatus.PENDING, 1, None),
        (OutboxStatus.PENDING, 1, None),
        (OutboxStatus.PENDING, 0, None),
        (OutboxStatus.PENDING, 0, None),
    ]
    assert rows[0].last_error.startswith("KafkaTimeoutError")
    assert OutboxEvent.objects.filter(id__in=[rows[0].id, rows[1].id], next_attempt_at__gt=Now()).count() == 2


# A relay in a child process that sends its batch, says so, and stops itself (SIGSTOP) before
# recording it, until the test lets it go on (SIGCONT).
_PAUSED_CHILD = """
import os, signal
import django
django.setup()
import outbox.relay as relay

send = relay._send_finish

def paused_send(producer, batch, **kwargs):
    outcome = send(producer, batch, **kwargs)
    print("sent", len(batch.tried), flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
    return outcome

relay._send_finish = paused_send
relay.relay_run()
"""


@pytest.mark.processes
def test_a_relay_paused_past_its_lease_records_nothing_and_leaves_the_new_holders_lease(
    event_topic, kafka_bootstrap, tmp_path, monkeypatch
):
    # given events over two keys, and a relay (another process, lease 6 s) that sent them all
    # and is then paused (SIGSTOP) before recording them
    written = [enqueue(f"k{n % 2}", {"n": n}) for n in range(6)]
    log = tmp_path / "paused.log"
    env = child_env(kafka_bootstrap=kafka_bootstrap, topic=event_topic, lease_seconds=6)
    with relay_child(_PAUSED_CHILD, env, log) as paused:
        assert line_of(paused, log) == ["sent", "6"]
        _, state = os.waitpid(paused.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(state), log.read_text()[-2000:]
        wait_for(
            lambda: not OutboxEvent.objects.filter(claimed_until__gte=Now()).exists(),
            "the paused relay's lease to run out on the database's clock",
        )

        # when a second relay takes the keys over and has sent them, but not recorded them yet
        second_sent, second_may_record = threading.Event(), threading.Event()
        send = relay._send_finish

        def send_then_hold(*args: Any, **kwargs: Any) -> Any:
            outcome = send(*args, **kwargs)
            second_sent.set()
            second_may_record.wait(30)
            return outcome

        monkeypatch.setattr(relay, "_send_finish", send_then_hold)
        second = in_thread(lambda: relay.relay_batch(producer=None, batch_size=100))
        wait_for(second_sent.is_set, "the second relay to send")
        second_leases = set(OutboxEvent.objects.exclude(claimed_by=None).values_list("claimed_by", flat=True))
        # and the paused relay goes on
        paused.send_signal(signal.SIGCONT)
        assert paused.wait(30) == 0, log.read_text()[-2000:]

        # then the first relay recorded nothing, and the second relay's leases are intact
        assert set(OutboxEvent.objects.values_list("status", "attempts")) == {(OutboxStatus.PENDING, 0)}
        assert len(second_leases) == 1
        assert set(OutboxEvent.objects.exclude(claimed_by=None).values_list("claimed_by", flat=True)) == second_leases
        assert OutboxEvent.objects.exclude(claimed_by=None).count() == 2  # the two keys' heads

        # when the second relay records its batch
        second_may_record.set()
        second.join(30)

    # then every row is published, and Kafka has every event twice (once per relay), each key's
    # events in writing order each time
    assert all_published()
    ids = [str(r.event_id) for r in written]
    messages = consume(event_topic, ids)
    assert sorted(m.event_id for m in messages) == sorted(ids + ids)
    for key, event_ids in by_key(messages).items():
        expected = [str(r.event_id) for r in written if r.key == key]
        assert event_ids == expected + expected
