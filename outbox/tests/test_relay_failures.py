"""Failures that are not outages: a row Kafka refuses dies after the configured attempts while other
keys flow and its own key waits; staff requeue or discard it. A relay killed between Kafka's
acknowledgement and marking the rows loses nothing: the next run sends the same event ids again."""

import signal

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_run
from outbox.services import event_discard, event_requeue
from tests.support.outbox import all_published, by_key, consume, enqueue, relay_until
from tests.support.relays import child_env, line_of, relay_child

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

TOO_BIG = "x" * (1024 * 1024 + 1)  # over the producer's max_request_size (1 MiB): Kafka-side refusal


def _status(row: OutboxEvent) -> str:
    return OutboxEvent.objects.get(id=row.id).status


def test_a_refused_row_dies_after_max_attempts_while_other_keys_flow_and_its_key_waits(event_topic, settings):
    # given three attempts, and a row the producer refuses (MessageSizeTooLargeError); a long
    # backoff at first, so the run below cannot retry the row within itself however slow the
    # machine (relay_run takes batches until nothing is due)
    settings.OUTBOX_MAX_RETRY_ATTEMPTS = 3
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 60
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 60
    too_big = enqueue("stuck", {"blob": TOO_BIG})
    behind = [enqueue("stuck", {"n": n}) for n in range(2)]
    flowing = [enqueue("flowing", {"n": n}) for n in range(3)]

    # when the relay runs once
    result = relay_run()

    # then the other key went, the refused row failed once, and the rows behind it were not sent
    assert (result.published, result.failed) == (3, 1)
    too_big.refresh_from_db()
    assert (too_big.status, too_big.attempts) == (OutboxStatus.PENDING, 1)
    assert too_big.last_error.startswith("MessageSizeTooLargeError: ")
    assert {_status(r) for r in flowing} == {OutboxStatus.PUBLISHED}

    # when the relay keeps running until the row is dead (short backoff from now on; the row due now)
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 0.05
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 0.1
    OutboxEvent.objects.filter(pk=too_big.pk).update(next_attempt_at=Now())
    relay_until(lambda: _status(too_big) == OutboxStatus.DEAD)
    # (and the other key keeps flowing meanwhile)
    later = enqueue("flowing", {"n": 3})
    relay_until(lambda: _status(later) == OutboxStatus.PUBLISHED)

    # then it died after exactly the configured attempts, and the rows behind it still wait, untried
    too_big.refresh_from_db()
    assert (too_big.status, too_big.attempts) == (OutboxStatus.DEAD, 3)
    assert [
        (r.status, r.attempts, r.last_error) for r in OutboxEvent.objects.filter(key="stuck", id__gt=too_big.id)
    ] == [
        (OutboxStatus.PENDING, 0, ""),
        (OutboxStatus.PENDING, 0, ""),
    ]
    # and nothing of the stuck key is on Kafka
    messages = consume(event_topic, [str(r.event_id) for r in [*flowing, later]])
    assert [m.value["data"]["n"] for m in messages if m.key == "flowing"] == [0, 1, 2, 3]
    assert [m for m in messages if m.key == "stuck"] == []

    # when staff requeue it (a selection with a row that is not dead changes only the dead one)
    assert [row.id for row in event_requeue(event_ids=[too_big.id, behind[0].id])] == [too_big.id]

    # then it is pending again, a fresh start, due now; and it fails its way to dead once more
    too_big.refresh_from_db()
    assert (too_big.status, too_big.attempts, too_big.last_error) == (OutboxStatus.PENDING, 0, "")
    assert too_big.next_attempt_at <= timezone.now()
    assert event_discard(event_ids=[too_big.id]) == []  # only dead rows can be discarded
    relay_until(lambda: _status(too_big) == OutboxStatus.DEAD)

    # when staff discard it
    assert [row.id for row in event_discard(event_ids=[too_big.id, behind[0].id])] == [too_big.id]

    # then it is gone, and the rows behind it go, in their order
    assert not OutboxEvent.objects.filter(id=too_big.id).exists()
    relay_until(all_published)
    messages = consume(event_topic, [str(r.event_id) for r in [*flowing, later, *behind]])
    assert [m.value["data"] for m in messages if m.key == "stuck"] == [{"n": 0}, {"n": 1}]


# Runs in a child process against the test database: a relay run whose marking step announces
# that Kafka acknowledged the batch and then waits to be killed, inside its open transaction.
_CHILD = """
import sys, time
import django
django.setup()
import outbox.relay as relay

def outcome_record(rows, failures, lease):
    print("acknowledged", len(rows), len(failures), flush=True)
    time.sleep(600)

relay.outcome_record = outcome_record
relay.relay_run()
"""


@pytest.mark.processes
def test_a_relay_killed_after_the_acknowledgement_but_before_marking_loses_nothing(
    event_topic, kafka_bootstrap, tmp_path
):
    # given events over three keys
    written = [enqueue(f"k{n % 3}", {"n": n}) for n in range(12)]
    # and a relay in another process that Kafka acknowledged, killed (SIGKILL) before it marked the rows;
    # its lease runs out after 6 s, then the next relay takes its keys over (long enough for it to
    # build its producer and be acknowledged inside the lease)
    env = child_env(kafka_bootstrap=kafka_bootstrap, topic=event_topic, lease_seconds=6)
    log = tmp_path / "child.log"
    with relay_child(_CHILD, env, log) as child:
        assert line_of(child, log) == ["acknowledged", "12", "0"]
        child.send_signal(signal.SIGKILL)
        child.wait(10)

    # then Kafka has every event, and the database still has every row pending, untouched
    ids = [str(r.event_id) for r in written]
    assert sorted(m.event_id for m in consume(event_topic, ids)) == sorted(ids)
    assert set(OutboxEvent.objects.values_list("status", "attempts")) == {(OutboxStatus.PENDING, 0)}

    # when the next relay runs (once the dead relay's lease has run out)
    relay_until(all_published)

    # then every event is on Kafka exactly twice, with the same event ids, in writing order per key each time
    messages = consume(event_topic, ids)
    assert sorted(m.event_id for m in messages) == sorted(ids + ids)
    for key, event_ids in by_key(messages).items():
        expected = [str(r.event_id) for r in written if r.key == key]
        assert event_ids == expected + expected
