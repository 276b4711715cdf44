"""Dead rows by cause: the fingerprint of an error, the groups (across day partitions), the keys
dead rows block, and requeue or discard of a whole group."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from outbox import selectors, services
from outbox.dead_rows import dead_group_requeue
from outbox.fingerprint import fingerprint_sql
from outbox.models import OutboxEvent, OutboxStatus
from tests.support.outbox import outbox_row

pytestmark = pytest.mark.django_db

DEAD = OutboxStatus.DEAD
TOO_BIG = "MessageSizeTooLargeError: [Error 10] MessageSizeTooLargeError: The message is {} bytes when serialized"
TOO_BIG_CAUSE = TOO_BIG.replace("10", "<n>").replace("{}", "<n>")
TIMEOUT = "KafkaTimeoutError: Failed to update metadata after {}.0 secs."


def _fingerprint(text: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {fingerprint_sql('t.last_error')} FROM (VALUES (%s)) AS t(last_error)", [text])
        return str(cursor.fetchone()[0])


@pytest.mark.parametrize(
    ("error", "fingerprint"),
    [
        (TOO_BIG.format(1048713), TOO_BIG_CAUSE),
        (
            "KafkaConnectionError: 10.0.3.17:9092 refused for 1f0e4c1a-9d2b-4c55-8a3e-0b7d2f1e9c44",
            "KafkaConnectionError: <addr> refused for <id>",
        ),
        (
            "NodeNotReadyError: kafka-0.kafka.svc:9092 trace 4bf92f3577b34da6a3ce929d0e0e4736 at 0x7f3a2c1e",
            "NodeNotReadyError: <addr> trace <hex> at <hex>",
        ),
        ("TopicAuthorizationFailedError:   topics\n   denied  ", "TopicAuthorizationFailedError: topics denied"),
        ("no class here 42", "no class here <n>"),
        ("BrokerResponseError: [::1]:9092 said [10]", "BrokerResponseError: <addr> said [<n>]"),
    ],
)
def test_the_fingerprint_keeps_the_error_class_and_replaces_what_differs_between_rows(error, fingerprint):
    assert _fingerprint(error) == fingerprint


def test_dead_rows_are_grouped_by_cause_with_counts_first_and_last_seen_topics_and_a_sample():
    # given three rows refused as too big (other sizes, other topics, one of them in an
    # older day's partition), two timed out, and pending and published rows with errors
    now = timezone.now()
    big = [
        outbox_row(
            "a",
            status=DEAD,
            last_error=TOO_BIG.format(2_000_001),
            failed_at=now - timedelta(hours=3),
            created_at=now - timedelta(days=2),
        ),
        outbox_row("b", status=DEAD, last_error=TOO_BIG.format(1_500_000), failed_at=now - timedelta(hours=1)),
        outbox_row("c", status=DEAD, last_error=TOO_BIG.format(1_048_577), failed_at=now, topic="order.shipped"),
    ]
    slow = [outbox_row(key, status=DEAD, last_error=TIMEOUT.format(n)) for key, n in (("d", 10), ("e", 30))]
    outbox_row("f", last_error=TOO_BIG.format(5))
    outbox_row("g", status=OutboxStatus.PUBLISHED, last_error=TOO_BIG.format(6))

    dead = selectors.outbox_dead_groups()

    # then two groups, the larger first, each with its own cause and rows
    assert (dead.rows_read, dead.truncated) == (5, False)
    too_big, timeout = dead.groups
    fingerprint = TOO_BIG_CAUSE
    assert (too_big.fingerprint, too_big.count, too_big.topics) == (fingerprint, 3, ["order.created", "order.shipped"])
    assert too_big.group_id == hashlib.md5(fingerprint.encode()).hexdigest()
    assert (too_big.first_seen, too_big.last_seen) == (big[0].failed_at, big[2].failed_at)
    assert (too_big.sample_id, too_big.sample_error) == (big[2].id, big[2].last_error)
    assert (timeout.fingerprint, timeout.count, timeout.sample_id) == (
        "KafkaTimeoutError: Failed to update metadata after <n> secs.",
        2,
        slow[1].id,
    )
    assert selectors.outbox_dead_group(group_id=timeout.group_id) == timeout
    assert selectors.outbox_dead_group(group_id="0" * 32) is None


def test_blocked_keys_name_the_dead_row_the_rows_waiting_behind_it_and_since_when():
    now = timezone.now()
    # given a key whose head is dead with three rows behind it, a key with a dead row and
    # nothing behind, and a key that flows (its rows published or pending)
    head = outbox_row(
        "stuck",
        status=DEAD,
        last_error="X: y",
        failed_at=now - timedelta(minutes=7),
        created_at=now - timedelta(days=1),
    )
    behind = [outbox_row("stuck", created_at=now - timedelta(minutes=m)) for m in (6, 5, 4)]
    alone = outbox_row("alone", status=DEAD, last_error="X: y")
    outbox_row("flowing", status=OutboxStatus.PUBLISHED)
    outbox_row("flowing")

    blocked = selectors.outbox_blocked_keys()

    assert (blocked.total, blocked.truncated) == (2, False)
    assert [(k.key, k.dead_id, k.waiting, k.dead_since, k.oldest_waiting_at) for k in blocked.keys] == [
        ("stuck", head.id, 3, head.failed_at, behind[0].created_at),
        ("alone", alone.id, 0, alone.failed_at, None),
    ]


def test_requeue_of_a_group_gives_its_dead_rows_a_fresh_start_and_leaves_other_causes_alone(
    django_capture_on_commit_callbacks,
):
    rows = [outbox_row(f"k{n}", status=DEAD, last_error=TOO_BIG.format(1_000_000 + n)) for n in range(3)]
    other = outbox_row("other", status=DEAD, last_error=TIMEOUT.format(10))
    group = selectors.outbox_dead_groups().groups[0]

    with django_capture_on_commit_callbacks() as callbacks:
        action = services.dead_group_requeue(group_id=group.group_id)

    assert sorted(row.id for row in action.rows) == [row.id for row in rows]
    assert action.remaining == 0
    assert len(callbacks) == 1  # one relay kick for the group
    fresh = OutboxEvent.objects.filter(id__in=[row.id for row in rows])
    assert {(r.status, r.attempts, r.last_error, r.failed_at, r.resubmissions) for r in fresh} == {
        (OutboxStatus.PENDING, 0, "", None, 0)
    }
    other.refresh_from_db()
    assert other.status == DEAD


def test_a_group_larger_than_one_action_is_done_oldest_first_and_says_how_many_remain():
    rows = [outbox_row(f"k{n}", status=DEAD, last_error=TOO_BIG.format(n)) for n in range(5)]
    group_id = selectors.outbox_dead_groups().groups[0].group_id

    first = dead_group_requeue(group_id=group_id, now=timezone.now(), limit=3)
    second = dead_group_requeue(group_id=group_id, now=timezone.now(), limit=3)

    assert ([row.id for row in first.rows], first.remaining) == ([row.id for row in rows[:3]], 2)
    assert ([row.id for row in second.rows], second.remaining) == ([row.id for row in rows[3:]], 0)
    assert not OutboxEvent.objects.filter(status=DEAD).exists()


def test_discard_of_a_group_deletes_only_its_dead_rows():
    dead = [outbox_row(f"k{n}", status=DEAD, last_error=TIMEOUT.format(n)) for n in range(2)]
    pending = outbox_row("k0", last_error=TIMEOUT.format(9))  # same cause, but only retrying
    other = outbox_row("k9", status=DEAD, last_error=TOO_BIG.format(1))
    group_id = next(g.group_id for g in selectors.outbox_dead_groups().groups if g.count == 2)

    action = services.dead_group_discard(group_id=group_id)

    assert sorted(row.id for row in action.rows) == [row.id for row in dead]
    assert set(OutboxEvent.objects.values_list("id", flat=True)) == {pending.id, other.id}
    assert services.dead_group_discard(group_id=group_id).rows == []
