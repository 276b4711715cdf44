"""The outbox's storage figures, from the catalogs: on a plain table and on one
range-partitioned by day (scratch tables of the outbox's columns, so these tests do not
depend on which shape the outbox's own migrations left), and on the outbox itself."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from outbox.metrics import outbox_storage_collector
from outbox.models import OutboxEvent
from outbox.storage import outbox_storage
from outbox.tests.scratch import NOW, PAGE, SCRATCH, WEEK, bound, day, execute, partitioned_scratch, plain_scratch
from tests.support.outbox import enqueue
from tests.support.waiting import wait_for


@pytest.mark.django_db
def test_a_plain_table_is_reported_whole_with_no_partition_figures():
    # given a plain table of the outbox's columns, with two rows
    plain_scratch()
    execute(f"INSERT INTO {SCRATCH} VALUES (1, 'pending', {bound(30)}), (2, 'dead', {bound(0)})")

    storage = outbox_storage(now=NOW, retention=WEEK, table=SCRATCH)

    # then it is one table (a heap page; the index's metapage and a leaf page), with no partitions
    assert (storage.partitioned, storage.table_bytes, storage.index_bytes) == (False, PAGE, 2 * PAGE)
    assert (storage.partitions, storage.past_retention, storage.default_rows) == ([], [], 0)
    assert storage.oldest_partition_start is None


@pytest.mark.django_db
def test_the_outbox_table_is_read_whichever_shape_it_has():
    enqueue("k1", {"n": 1})

    storage = outbox_storage(now=timezone.now(), retention=WEEK)

    # sized as PostgreSQL sizes its leaves (the table itself while it is a plain one)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sum(pg_table_size(relid)), sum(pg_indexes_size(relid)) FROM"
            " (SELECT %s::regclass AS relid UNION SELECT relid FROM pg_partition_tree(%s) WHERE isleaf) AS leaves",
            [OutboxEvent._meta.db_table] * 2,
        )
        table_bytes, index_bytes = cursor.fetchone()
    assert (storage.table_bytes, storage.index_bytes) == (table_bytes, index_bytes)
    assert storage.table_bytes >= PAGE and storage.past_retention == [] and storage.default_rows == 0


@pytest.mark.django_db
def test_partitions_are_read_from_their_bounds_and_those_past_retention_are_named():
    # given the partitioned shape, a row in the legacy partition, one today, one in DEFAULT
    partitioned_scratch()
    execute(
        f"INSERT INTO {SCRATCH} VALUES (1, 'dead', {bound(30)}), (2, 'pending', {bound(0)}),"
        " (3, 'pending', '2999-01-01 00:00:00+00')"
    )

    storage = outbox_storage(now=NOW, retention=WEEK, table=SCRATCH)

    # then every partition is there with its range, and the three ending before
    # now - 7 days (legacy, 10 and 8 days ago) are past retention; 7 days ago ends after it
    one_day = dt.timedelta(days=1)
    midnight = dt.datetime.combine(NOW.date(), dt.time(), tzinfo=dt.UTC)
    ranges = {p.name: (p.lower, p.upper, p.is_default) for p in storage.partitions}
    assert ranges == {
        f"{SCRATCH}_legacy": (None, midnight - 10 * one_day, False),
        f"{SCRATCH}_p{day(10)}": (midnight - 10 * one_day, midnight - 9 * one_day, False),
        f"{SCRATCH}_p{day(8)}": (midnight - 8 * one_day, midnight - 7 * one_day, False),
        f"{SCRATCH}_p{day(7)}": (midnight - 7 * one_day, midnight - 6 * one_day, False),
        f"{SCRATCH}_p{day(0)}": (midnight, midnight + one_day, False),
        f"{SCRATCH}_pdefault": (None, None, True),
    }
    assert storage.partitioned is True
    assert sorted(p.name for p in storage.past_retention) == [
        f"{SCRATCH}_legacy",
        f"{SCRATCH}_p{day(10)}",
        f"{SCRATCH}_p{day(8)}",
    ]
    assert storage.default_rows == 1
    # the legacy partition (MINVALUE) is dated by its upper bound
    assert storage.oldest_partition_start == midnight - 10 * one_day
    # three leaves hold a row: one heap page each, and the index a metapage and a leaf page each;
    # an empty leaf has no heap page but its index's metapage
    assert storage.table_bytes == 3 * PAGE
    assert storage.index_bytes == 3 * 2 * PAGE + 3 * PAGE


@pytest.mark.django_db(transaction=True)
def test_dead_tuples_are_summed_over_the_partitions():
    # given rows in two partitions, three of them deleted (committed)
    partitioned_scratch()
    try:
        execute(
            f"INSERT INTO {SCRATCH} SELECT n, 'published', {bound(8)} FROM generate_series(1, 4) AS n",
            f"INSERT INTO {SCRATCH} SELECT n, 'published', {bound(0)} FROM generate_series(5, 8) AS n",
            f"DELETE FROM {SCRATCH} WHERE id IN (1, 2, 5)",
        )

        # then the statistics reach the figure (they are sent when a session goes idle)
        dead = wait_for(
            lambda: outbox_storage(now=NOW, retention=WEEK, table=SCRATCH).dead_tuples == 3,
            "the three deleted rows counted as dead tuples",
        )
        assert dead
    finally:
        execute(f"DROP TABLE {SCRATCH}")


@pytest.mark.django_db
def test_the_storage_gauges():
    # given the partitioned shape around today, with a row in the legacy partition and in DEFAULT
    now = timezone.now()
    partitioned_scratch(now=now)
    execute(f"INSERT INTO {SCRATCH} VALUES (1, 'dead', {bound(30, now=now)}), (2, 'pending', '2999-01-01 00:00:00+00')")
    registry = CollectorRegistry()
    registry.register(outbox_storage_collector(table=SCRATCH))

    text = generate_latest(registry).decode()
    values = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}

    assert (values["outbox_table_size_bytes"], values["outbox_index_size_bytes"]) == (2 * PAGE, 2 * 2 * PAGE + 4 * PAGE)
    assert values["outbox_dead_tuples"] == 0
    assert (values["outbox_partitions"], values["outbox_partitions_past_retention"]) == (6, 3)
    assert values["outbox_default_partition_rows"] == 1
    # the oldest partition is the legacy one, dated by its upper bound: midnight 10 days ago
    midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=10)
    assert values["outbox_oldest_partition_age_seconds"] >= (now - midnight).total_seconds()
    assert values["outbox_oldest_partition_age_seconds"] < (now - midnight).total_seconds() + 60
