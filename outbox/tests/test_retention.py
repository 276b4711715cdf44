"""Retention drops whole partitions past OUTBOX_RETENTION_DAYS and keeps every one holding a
pending or dead row, or a row published within retention; no DELETE of rows ever."""

from datetime import date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outbox.models import OutboxEvent, OutboxStatus
from outbox.partitions import DEFAULT, partition_create, partition_name, partitions_list
from outbox.selectors import outbox_partitions
from outbox.services import event_discard, outbox_retention_run
from tests.support.outbox import outbox_row

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def _day(offset: int) -> date:
    return timezone.now().date() + timedelta(days=offset)


def _noon(offset: int) -> datetime:
    return datetime.combine(_day(offset), datetime.min.time(), tzinfo=timezone.now().tzinfo) + timedelta(hours=12)


def test_retention_drops_partitions_past_retention_whose_rows_are_all_published(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    for offset in (-12, -11, -10, -9, -2):
        partition_create(day=_day(offset))
    # given a day past retention whose rows are all published long ago
    gone = [
        outbox_row("k", status=OutboxStatus.PUBLISHED, created_at=_noon(-12), published_at=_noon(-12)) for _ in range(3)
    ]
    # a day with a dead row, a day with a pending row, a day with a row published late,
    # and a day within retention
    dead = outbox_row("k", status=OutboxStatus.DEAD, created_at=_noon(-11))
    outbox_row("k", status=OutboxStatus.PUBLISHED, created_at=_noon(-11), published_at=_noon(-11))
    pending = outbox_row("k", status=OutboxStatus.PENDING, created_at=_noon(-10))
    late = outbox_row("k", status=OutboxStatus.PUBLISHED, created_at=_noon(-9), published_at=timezone.now() - DAY)
    recent = outbox_row("k", status=OutboxStatus.PUBLISHED, created_at=_noon(-2), published_at=_noon(-2))

    # when retention runs
    with CaptureQueriesContext(connection) as queries:
        result = outbox_retention_run()

    # then only the first day's partition is gone, with its rows, and no row was deleted one by one
    names = {p.name for p in partitions_list()}
    assert result.dropped == [partition_name(_day(-12))]
    assert partition_name(_day(-12)) not in names
    assert not OutboxEvent.objects.filter(id__in=[r.id for r in gone]).exists()
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("DELETE")]
    assert result.kept[partition_name(_day(-11))] == "holds 0 pending and 1 dead rows"
    assert result.kept[partition_name(_day(-10))] == "holds 1 pending and 0 dead rows"
    assert result.kept[partition_name(_day(-9))] == "holds rows published within retention"
    assert result.kept[partition_name(_day(-2))] == "within retention"
    assert result.kept[DEFAULT] == "default partition (never dropped)"
    assert set(OutboxEvent.objects.values_list("id", flat=True)) >= {dead.id, pending.id, late.id, recent.id}


def test_a_partition_kept_for_its_dead_row_goes_once_staff_discard_it(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    partition_create(day=_day(-10))
    dead = outbox_row("k", status=OutboxStatus.DEAD, created_at=_noon(-10))
    assert outbox_retention_run().dropped == []

    assert [row.id for row in event_discard(event_ids=[dead.id])] == [dead.id]

    assert outbox_retention_run().dropped == [partition_name(_day(-10))]


def test_retention_makes_partitions_ahead_and_a_second_run_makes_none(settings):
    settings.OUTBOX_PARTITIONS_AHEAD_DAYS = 4
    first = outbox_retention_run(now=timezone.now() + 10 * DAY)
    assert first.created == [_day(offset).isoformat() for offset in range(10, 15)]
    assert outbox_retention_run(now=timezone.now() + 10 * DAY).created == []


def test_the_partitions_selector_says_why_a_partition_past_retention_stays(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    partition_create(day=_day(-10))
    outbox_row("k", status=OutboxStatus.DEAD, created_at=_noon(-10))
    outbox_row("k", status=OutboxStatus.PENDING, created_at=_noon(-10))

    found = {p.name: p for p in outbox_partitions()}

    old = found[partition_name(_day(-10))]
    assert (old.pending, old.dead, old.past_retention) == (1, 1, True)
    assert old.kept_because == "holds 1 pending and 1 dead rows"
    assert (old.start, old.end) == (_noon(-10) - DAY / 2, _noon(-10) + DAY / 2)
    today = found[partition_name(_day(0))]
    assert (today.past_retention, today.kept_because) == (False, "")
    assert found[DEFAULT].is_default


def test_rows_of_a_day_in_the_default_partition_block_only_that_days_partition(settings, caplog):
    settings.OUTBOX_PARTITIONS_AHEAD_DAYS = 2
    # given a row written for a day that has no partition yet: it went to the default partition
    stray = outbox_row("k", status=OutboxStatus.PENDING, created_at=_noon(11))

    # when retention runs on day 10 and wants partitions for days 10 to 12
    result = outbox_retention_run(now=_noon(10))

    # then the other days are made, the error is logged, and the row is still there
    assert result.created == [_day(10).isoformat(), _day(12).isoformat()]
    assert f"Outbox partition for {_day(11)} not created" in caplog.text
    assert OutboxEvent.objects.get(id=stray.id).status == OutboxStatus.PENDING
