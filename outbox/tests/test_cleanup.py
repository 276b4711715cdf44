"""Cleanup deletes published rows past the retention only, a bounded batch per DELETE statement."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outbox.cleanup import cleanup_published
from outbox.models import OutboxEvent, OutboxStatus

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def _row(status: str, age: timedelta, published_age: timedelta | None = None) -> OutboxEvent:
    now = timezone.now()
    return OutboxEvent.objects.create(
        event_id=uuid.uuid4(),
        event_type="order.created",
        topic="order.created",
        key="user123",
        payload={},
        status=status,
        created_at=now - age,
        next_attempt_at=now - age,
        published_at=None if published_age is None else now - published_age,
    )


def _deletes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]


def test_cleanup_deletes_only_published_rows_past_the_retention_in_batches(settings):
    # given a 7-day retention, seven published rows past it and rows that must stay
    settings.OUTBOX_RETENTION_DAYS = 7
    old_published = [_row(OutboxStatus.PUBLISHED, 30 * DAY, published_age=8 * DAY) for _ in range(7)]
    keep = [
        _row(OutboxStatus.PUBLISHED, 30 * DAY, published_age=6 * DAY),  # published recently, written long ago
        _row(OutboxStatus.PUBLISHED, 0 * DAY, published_age=0 * DAY),
        _row(OutboxStatus.PENDING, 30 * DAY),  # an old row still waiting to go
        _row(OutboxStatus.DEAD, 30 * DAY),  # dead rows wait for staff
        _row(OutboxStatus.DEAD, 30 * DAY),
    ]

    # when cleanup runs with batches of three
    with CaptureQueriesContext(connection) as queries:
        deleted = cleanup_published(batch_size=3)

    # then exactly the old published rows are gone, in three DELETEs of at most three rows (3 + 3 + 1)
    assert deleted == 7
    assert set(OutboxEvent.objects.values_list("id", flat=True)) == {row.id for row in keep}
    assert not OutboxEvent.objects.filter(id__in=[row.id for row in old_published]).exists()
    statements = _deletes(queries)
    assert len(statements) == 3
    assert all('"outbox_outboxevent"' in sql and "status" in sql for sql in statements)


def test_cleanup_stops_after_max_batches_and_the_next_run_carries_on(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    for _ in range(5):
        _row(OutboxStatus.PUBLISHED, 10 * DAY, published_age=8 * DAY)

    with CaptureQueriesContext(connection) as queries:
        assert cleanup_published(batch_size=2, max_batches=2) == 4
    assert len(_deletes(queries)) == 2
    assert OutboxEvent.objects.count() == 1

    assert cleanup_published(batch_size=2, max_batches=2) == 1
    assert OutboxEvent.objects.count() == 0


def test_cleanup_batch_size_comes_from_settings(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    settings.OUTBOX_CLEANUP_BATCH_SIZE = 2
    for _ in range(3):
        _row(OutboxStatus.PUBLISHED, 10 * DAY, published_age=8 * DAY)

    with CaptureQueriesContext(connection) as queries:
        assert cleanup_published() == 3
    assert len(_deletes(queries)) == 2


def test_cleanup_with_nothing_old_deletes_nothing(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    recent = _row(OutboxStatus.PUBLISHED, 1 * DAY, published_age=1 * DAY)
    pending = _row(OutboxStatus.PENDING, 100 * DAY)

    with CaptureQueriesContext(connection) as queries:
        assert cleanup_published(batch_size=10) == 0

    assert _deletes(queries) == []
    assert set(OutboxEvent.objects.values_list("id", flat=True)) == {recent.id, pending.id}
