"""Retention dropping a partition while writers insert and two relays claim and publish: no lost
or doubled row, no error, each key still in id order, and the drop waits its turn (lock_timeout)."""

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from outbox.claim import claim
from outbox.models import OutboxEvent, OutboxStatus
from outbox.outcome import outcome_record
from outbox.partitions import PARENT, partition_create, partition_name, partitions_list
from outbox.services import EventSpec, events_enqueue, outbox_retention_run

pytestmark = pytest.mark.django_db(transaction=True)

WRITES = 60
KEYS = 5


def _old_partition(rows: int) -> str:
    """A partition ten days back, full of rows published then."""
    day = timezone.now().date() - timedelta(days=10)
    partition_create(day=day)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {PARENT} (event_id, event_type, topic, key, payload, headers, status, attempts,
                                  next_attempt_at, last_error, created_at, published_at)
            SELECT gen_random_uuid(), 'order.created', 't', 'old' || g, '{{}}', '{{}}', 'published', 1,
                   %(at)s, '', %(at)s, %(at)s
            FROM generate_series(1, %(rows)s) g
            """,
            {"at": timezone.now() - timedelta(days=10), "rows": rows},
        )
    return partition_name(day)


def _thread(errors: list[BaseException], work: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_retention_drops_a_partition_while_relays_publish_and_writers_insert(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    old = _old_partition(500)
    errors: list[BaseException] = []
    sent: list[tuple[str, int]] = []
    sent_lock = threading.Lock()
    writing = threading.Event()
    writing.set()

    def write() -> None:
        for n in range(WRITES):
            with transaction.atomic():
                events_enqueue(events=[EventSpec("order.created", f"key{n % KEYS}", {"n": n})])
        writing.clear()

    def relay() -> None:
        lease = uuid.uuid4()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = claim(7, lease)
            if batch:
                with sent_lock:  # while the lease is held: the key's next batch comes after
                    sent.extend((row.key, row.id) for row in batch)
                outcome_record(batch, {}, lease)
            elif not writing.is_set() and not OutboxEvent.objects.filter(status=OutboxStatus.PENDING).exists():
                return

    threads = [_thread(errors, write), _thread(errors, relay), _thread(errors, relay)]
    # when retention runs meanwhile, again until it dropped the old partition
    dropped: list[str] = []
    deadline = time.monotonic() + 60
    while not dropped and time.monotonic() < deadline:
        dropped = outbox_retention_run().dropped
    for thread in threads:
        thread.join(timeout=90)

    # then nothing failed, the old day is gone and every new event was published once, per key in id order
    assert errors == []
    assert dropped == [old]
    assert old not in {p.name for p in partitions_list()}
    written = list(OutboxEvent.objects.order_by("id").values_list("key", "id", "status"))
    assert len(written) == WRITES
    assert {status for _, _, status in written} == {OutboxStatus.PUBLISHED}
    assert sorted(sent, key=lambda item: item[1]) == [(key, id_) for key, id_, _ in written]
    for key in {key for key, _ in sent}:
        ids = [id_ for k, id_ in sent if k == key]
        assert ids == sorted(ids)


def test_a_drop_that_cannot_get_its_lock_gives_up_quickly_and_goes_next_run(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    settings.OUTBOX_PARTITION_LOCK_TIMEOUT_MS = 200
    old = _old_partition(10)
    reading = threading.Event()
    finish = threading.Event()
    errors: list[BaseException] = []

    def long_reader() -> None:
        # A transaction that read the outbox holds its lock until it ends (a long report, say).
        with transaction.atomic():
            OutboxEvent.objects.filter(status=OutboxStatus.PENDING).exists()
            reading.set()
            finish.wait(timeout=30)

    reader = _thread(errors, long_reader)
    assert reading.wait(timeout=10)
    try:
        # when retention runs while it is open: the drop times out instead of queueing everyone
        blocked = outbox_retention_run()
    finally:
        finish.set()
        reader.join(timeout=30)

    assert blocked.dropped == []
    assert blocked.kept[old] == "lock timeout (retried next run)"
    assert errors == []
    # and the next run drops it
    assert outbox_retention_run().dropped == [old]
