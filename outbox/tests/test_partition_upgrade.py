"""The upgrade from the plain outbox table: on a database of its own, migrated to just before the
partitioning, filled with rows in every state, then migrated. Afterwards the relay delivers the
pending rows in key order across the old and new partitions, and retention drops the legacy
partition once its rows are all published and past retention, not while it holds a dead row."""

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from outbox.claim import claim
from outbox.models import OutboxEvent, OutboxStatus
from outbox.outcome import outcome_record
from outbox.partitions import DEFAULT, LEGACY, PARENT, partition_name, partitions_list
from outbox.services import event_discard, outbox_retention_run
from outbox.upgrade import is_partitioned

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plain_outbox_db(transactional_db: None) -> Iterator[None]:
    """The default connection on a new database migrated up to the plain outbox table."""
    original = connection.settings_dict["NAME"]
    name = f"outbox_upgrade_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        call_command("migrate", "outbox", "0004", verbosity=0)
        call_command("migrate", "orders", "0005", verbosity=0)
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _release_before_model() -> Any:
    """The outbox model as the release before the partitioning wrote its rows (no columns added since)."""
    state = MigrationExecutor(connection).loader.project_state([("outbox", "0004_claimed_by_index")])
    return state.apps.get_model("outbox", "OutboxEvent")


def _row(key: str, status: str, created_at: datetime, model: Any = OutboxEvent, **fields: object) -> Any:
    defaults: dict[str, object] = {
        "published_at": created_at if status == OutboxStatus.PUBLISHED else None,
        "next_attempt_at": created_at,
    }
    return model.objects.create(
        event_id=uuid.uuid4(),
        event_type="order.created",
        topic="order.created",
        key=key,
        payload={"n": key},
        status=status,
        created_at=created_at,
        **{**defaults, **fields},
    )


def _relay_until_idle() -> list[tuple[str, int]]:
    """The relay's database side (claim, record as sent): what it would send, in order."""
    sent: list[tuple[str, int]] = []
    lease = uuid.uuid4()
    while batch := claim(10, lease):
        sent += [(row.key, row.id) for row in batch]
        outcome_record(batch, {}, lease)
    return sent


def test_upgrade_keeps_every_row_and_the_relay_and_retention_work_on_them(plain_outbox_db, settings):
    now = timezone.now()
    old = now - timedelta(days=9)
    # given the plain table with old and new rows in every state
    assert not is_partitioned()
    plain = _release_before_model()
    published_old = _row("a", OutboxStatus.PUBLISHED, old, plain)
    dead_old = _row("b", OutboxStatus.DEAD, old, plain, attempts=5, last_error="refused")
    pending_old = _row("a", OutboxStatus.PENDING, old, plain)
    # a head leased by a relay that died (its lease ran out)
    leased = _row(
        "c", OutboxStatus.PENDING, now, plain, claimed_by=uuid.uuid4(), claimed_until=now - timedelta(seconds=1)
    )
    pending_new = _row("a", OutboxStatus.PENDING, now, plain)
    behind_leased = _row("c", OutboxStatus.PENDING, now, plain)
    before = sorted(plain.objects.values_list("id", "event_id", "status", "key", "created_at"))

    # when the migration runs
    call_command("migrate", verbosity=0)

    # then the table is partitioned and holds the same rows, the old ones in the legacy partition
    assert is_partitioned()
    assert sorted(OutboxEvent.objects.values_list("id", "event_id", "status", "key", "created_at")) == before
    names = [p.name for p in partitions_list()]
    assert names[0] == LEGACY and names[-1] == DEFAULT
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {LEGACY}")
        assert cursor.fetchone()[0] == len(before)
    # and the delivery coordinates added after the partitioning reach the legacy partition too:
    # its published row, sent before they were recorded, shows "unknown"
    assert OutboxEvent.objects.get(id=published_old.id).delivery == "unknown"
    assert OutboxEvent.objects.get(id=pending_old.id).delivery == "-"
    # new rows go to a daily partition, after every old id
    after = _row("a", OutboxStatus.PENDING, timezone.now() + timedelta(days=2), next_attempt_at=timezone.now())
    assert after.id > max(row[0] for row in before)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {PARENT} WHERE id = %s", [after.id])
        assert cursor.fetchone()[0] == partition_name((timezone.now() + timedelta(days=2)).date())

    # and the relay sends each key's pending rows in id order, across the partitions
    sent = _relay_until_idle()
    by_key = {key: [i for k, i in sent if k == key] for key in {k for k, _ in sent}}
    assert by_key == {"a": [pending_old.id, pending_new.id, after.id], "c": [leased.id, behind_leased.id]}
    assert OutboxEvent.objects.get(id=dead_old.id).status == OutboxStatus.DEAD

    # and retention keeps the legacy partition while it holds the dead row, drops it once discarded
    settings.OUTBOX_RETENTION_DAYS = 7
    later = timezone.now() + timedelta(days=12)
    assert outbox_retention_run(now=later).kept[LEGACY] == "holds 0 pending and 1 dead rows"
    assert [row.id for row in event_discard(event_ids=[dead_old.id])] == [dead_old.id]
    assert LEGACY in outbox_retention_run(now=later).dropped
    assert not OutboxEvent.objects.filter(id=published_old.id).exists()
    # and ids go on from the sequence, which the dropped legacy table did not own
    assert _row("a", OutboxStatus.PENDING, timezone.now()).id > after.id


def test_a_new_database_gets_the_partitioned_table_without_a_legacy_partition(plain_outbox_db):
    call_command("migrate", verbosity=0)

    names = [p.name for p in partitions_list()]
    today = timezone.now().date()
    assert names == [partition_name(today + timedelta(days=d)) for d in range(4)] + [DEFAULT]
