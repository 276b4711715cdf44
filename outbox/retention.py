"""Outbox retention: partitions made ahead, whole partitions dropped once past retention.

A partition is dropped when its whole range ended before the cutoff (now minus
OUTBOX_RETENTION_DAYS), it holds no pending or dead row, and its latest published_at is
before the cutoff too (a row published late stays its full retention). Dropping is
DETACH + DROP in one short transaction: no DELETE, no dead tuples, no vacuum work, the
cost of a catalog change whatever the rows.

Locks: DETACH without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent (CONCURRENTLY
is refused while the table has a default partition, and cannot run in a transaction
block). Held for milliseconds, but while it waits for running statements every new
statement on the outbox queues behind it: lock_timeout (OUTBOX_PARTITION_LOCK_TIMEOUT_MS)
bounds that stall, and a partition not dropped is retried on the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

from outbox.partitions import (
    DEFAULT,
    PARENT,
    Partition,
    partition_contents,
    partition_create,
    partition_rows_estimate,
    partitions_list,
    retention_blocker,
)

logger = logging.getLogger(__name__)


@dataclass
class RetentionResult:
    dropped: list[str] = field(default_factory=list)
    rows_dropped_estimate: int = 0  # the planner's row counts of the dropped partitions
    kept: dict[str, str] = field(default_factory=dict)  # partition -> why it stays
    created: list[str] = field(default_factory=list)


def _lock_timeout() -> None:
    with connection.cursor() as cursor:
        timeout = f"{settings.OUTBOX_PARTITION_LOCK_TIMEOUT_MS}ms"
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [timeout])


def partitions_maintain(*, now: datetime | None = None) -> list[str]:
    """Partitions for today and OUTBOX_PARTITIONS_AHEAD_DAYS days ahead; returns those made."""
    today = (now or timezone.now()).astimezone(UTC).date()
    created = []
    for offset in range(settings.OUTBOX_PARTITIONS_AHEAD_DAYS + 1):
        day = today + timedelta(days=offset)
        try:
            with transaction.atomic():
                _lock_timeout()
                if partition_create(day=day):
                    created.append(day.isoformat())
        except OperationalError:
            # Lock timeout (a long statement on the outbox): days ahead leave time for the next run.
            logger.warning("Outbox partition for %s not created (lock timeout); retried next run", day, exc_info=True)
        except DatabaseError:
            # The default partition holds rows of that day (written while no partition was there):
            # PostgreSQL refuses the partition until they are moved. Log it and go on, so the
            # other days are made and retention still runs (docs/architecture.md says what to do).
            logger.error("Outbox partition for %s not created; rows of that day in %s?", day, DEFAULT, exc_info=True)
    if created:
        logger.info("Outbox partitions created for %s", ", ".join(created))
    return created


def _why_kept(partition: Partition, cutoff: datetime) -> str | None:
    if partition.is_default:
        return "default partition (never dropped)"
    if partition.end is None or partition.end > cutoff:
        return "within retention"
    return retention_blocker(partition_contents(partition.name), cutoff)


def _drop(partition: Partition, cutoff: datetime) -> str | None:
    """Detach and drop, under the parent's lock, after checking again. None if dropped, else why not."""
    try:
        with transaction.atomic():
            _lock_timeout()
            with connection.cursor() as cursor:
                # The parent first, as every query on the outbox takes it (then its partitions):
                # taking the partition first could deadlock with a query holding the parent.
                cursor.execute(f"LOCK TABLE ONLY {PARENT} IN ACCESS EXCLUSIVE MODE")
                # Rows dated in the past are only written by hand (created_at is now on every
                # write), but a check under the lock costs one probe of a small index.
                reason = _why_kept(partition, cutoff)
                if reason is not None:
                    return reason
                cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {partition.name}")
                cursor.execute(f"DROP TABLE {partition.name}")
    except OperationalError as error:
        logger.warning("Outbox partition %s not dropped: %s; retried next run", partition.name, error)
        return "lock timeout (retried next run)"
    return None


def retention_run(*, now: datetime | None = None) -> RetentionResult:
    """Make partitions ahead, then drop every partition past retention that may go."""
    now = now or timezone.now()
    result = RetentionResult(created=partitions_maintain(now=now))
    cutoff = now - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    for partition in partitions_list():
        reason = _why_kept(partition, cutoff)
        if reason is None:
            rows = partition_rows_estimate(partition.name)
            reason = _drop(partition, cutoff)
            if reason is None:
                result.dropped.append(partition.name)
                result.rows_dropped_estimate += rows
                continue
        result.kept[partition.name] = reason
        if reason.startswith("holds") and partition.end is not None and partition.end <= cutoff:
            logger.warning("Outbox partition %s is past retention but kept: %s", partition.name, reason)
    if result.dropped:
        logger.info("Outbox retention dropped %s (~%d rows)", ", ".join(result.dropped), result.rows_dropped_estimate)
    return result
