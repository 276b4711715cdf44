"""The outbox table's partitions: one per UTC day of `created_at`, read from the catalog.

The outbox's table is range-partitioned on `created_at` (docs/architecture.md, "Storage by
day"): `<table>_pYYYYMMDD` holds the rows written that UTC day, `<table>_plegacy` (only on
databases upgraded from the plain table) the rows written before the upgrade, and
`<table>_pdefault` whatever no other partition takes (a row dated where no partition was
made ahead): normally empty, and never dropped.

Every statement here names one partition or reads the catalog: its cost follows the number
of partitions, never the rows in them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection

from orders_project.counting import EXACT_LIMIT
from outbox.models import OutboxEvent, OutboxStatus

PARENT = OutboxEvent._meta.db_table
DEFAULT = f"{PARENT}_pdefault"
LEGACY = f"{PARENT}_plegacy"
_BOUND = re.compile(r"FROM \((MINVALUE|'[^']+')\) TO \((MAXVALUE|'[^']+')\)")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Partition:
    name: str
    # The range of created_at it holds: [start, end); None for MINVALUE/MAXVALUE, both None
    # for the default partition.
    start: datetime | None
    end: datetime | None
    is_default: bool


def _bound(text: str) -> datetime | None:
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(text.strip("'")).astimezone(UTC)


def partitions_list() -> list[Partition]:
    """The outbox's partitions from pg_inherits, oldest range first, the default last."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass
            """,
            [PARENT],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound)
        if match is None:
            found.append(Partition(name, None, None, is_default=True))
        else:
            found.append(Partition(name, _bound(match[1]), _bound(match[2]), is_default=False))
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.is_default, p.start or oldest))


def partition_create(*, day: date) -> bool:
    """Create the partition of `day` unless it exists. Returns whether it made one.

    CREATE TABLE ... PARTITION OF takes an ACCESS EXCLUSIVE lock on the parent for a moment
    (and scans the default partition, normally empty): the caller bounds the wait with
    lock_timeout, and makes partitions days ahead so a failed attempt is retried in time.
    """
    name = partition_name(day)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return False
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)",
            [day_start(day), day_start(day + timedelta(days=1))],
        )
    return True


@dataclass(frozen=True)
class PartitionContents:
    # Together at most EXACT_LIMIT + 1 (orders_project.counting): enough to say a partition stays.
    pending: int
    dead: int
    last_published_at: datetime | None


def partition_contents(name: str) -> PartitionContents:
    """What keeps a partition: its pending and dead rows (through its partial (key, id) index,
    which holds only unpublished rows) and its latest published_at (one probe of its partial
    published_at index). Never a pass over its published rows."""
    with connection.cursor() as cursor:
        # Bounded: a relay stuck for hours leaves a partition of pending rows, and the operations
        # page reads this on every view.
        cursor.execute(
            f"SELECT status, count(*) FROM (SELECT status FROM {name} WHERE NOT (status = %s) LIMIT %s) AS u "
            "GROUP BY status",
            [OutboxStatus.PUBLISHED, EXACT_LIMIT + 1],
        )
        counts = dict(cursor.fetchall())
        cursor.execute(f"SELECT max(published_at) FROM {name} WHERE status = %s", [OutboxStatus.PUBLISHED])
        last_published = cursor.fetchone()[0]
    pending, dead = counts.get(OutboxStatus.PENDING, 0), counts.get(OutboxStatus.DEAD, 0)
    return PartitionContents(pending=pending, dead=dead, last_published_at=last_published)


def retention_blocker(contents: PartitionContents, cutoff: datetime) -> str | None:
    """Why a partition past retention must stay (None: it may be dropped). A pending or
    dead row is never dropped (staff decide about dead ones); a row published late keeps
    its partition until that row too is past retention."""
    if contents.pending or contents.dead:
        return f"holds {contents.pending} pending and {contents.dead} dead rows"
    if contents.last_published_at is not None and contents.last_published_at >= cutoff:
        return "holds rows published within retention"
    return None


def partition_rows_estimate(name: str) -> int:
    """The planner's row count (pg_class.reltuples, kept by autovacuum/ANALYZE): 0 if never analyzed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass", [name])
        return int(cursor.fetchone()[0])
