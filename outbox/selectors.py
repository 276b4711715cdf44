"""Reads of the outbox for staff (the operations page). Each one bounded and indexed:
the table holds every published row for OUTBOX_RETENTION_DAYS, millions on a busy day."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from orders_project.counting import count_bounded
from outbox.audit_window import AuditReport, audit_reports
from outbox.dead_rows import DEAD_ROWS_READ, BlockedKeys, DeadGroup, DeadGroups, blocked_keys, dead_groups
from outbox.models import OutboxEvent, OutboxStatus
from outbox.partitions import partition_contents, partition_rows_estimate, partitions_list, retention_blocker


@dataclass(frozen=True)
class OutboxHealth:
    pending: int
    dead: int
    oldest_pending_at: datetime | None  # created_at of the oldest pending row; None when none


def outbox_health() -> OutboxHealth:
    """Bounded counts through the status indexes; the oldest pending row through the
    partial pending index (pending rows are few unless the relay is stuck, and then
    the count is bounded and the MIN reads only that small index's rows)."""
    pending = OutboxEvent.objects.filter(status=OutboxStatus.PENDING)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    return OutboxHealth(
        pending=count_bounded(pending),
        dead=count_bounded(OutboxEvent.objects.filter(status=OutboxStatus.DEAD)),
        oldest_pending_at=oldest,
    )


def outbox_dead_recent(*, limit: int = 10) -> list[OutboxEvent]:
    """The newest dead rows, with their last errors."""
    return list(OutboxEvent.objects.filter(status=OutboxStatus.DEAD).order_by("-id")[:limit])


def outbox_dead_groups(*, limit: int = 100, read: int = DEAD_ROWS_READ) -> DeadGroups:
    """The newest `read` dead rows grouped by the fingerprint of their error, the largest group
    first (outbox/dead_rows.py)."""
    return dead_groups(limit=limit, read=read)


def outbox_dead_group(*, group_id: str) -> DeadGroup | None:
    """One group of dead rows by its id (md5 of the fingerprint); None when it has no dead rows left."""
    groups = dead_groups(limit=1, group_id=group_id).groups
    return groups[0] if groups else None


def outbox_blocked_keys(*, limit: int = 100) -> BlockedKeys:
    """Keys held by a dead row, with the rows waiting behind each, the most first."""
    return blocked_keys(limit=limit)


def outbox_published_per_minute(*, since: datetime) -> dict[datetime, int]:
    """Rows published since `since`, per minute (UTC, truncated): one range scan of the
    partial published_at index, grouped; minutes without events are absent."""
    rows = (
        OutboxEvent.objects.filter(status=OutboxStatus.PUBLISHED, published_at__gte=since)
        .annotate(minute=TruncMinute("published_at"))
        .order_by()
        .values("minute")
        .annotate(count=Count("id"))
        .values_list("minute", "count")
    )
    return {minute: count for minute, count in rows if minute is not None}


@dataclass(frozen=True)
class OutboxPartition:
    name: str
    start: datetime | None  # created_at range [start, end); None: unbounded (legacy) or the default
    end: datetime | None
    is_default: bool
    pending: int  # pending + dead counted up to 10,001 (orders_project.counting.EXACT_LIMIT + 1)
    dead: int
    rows_estimate: int  # the planner's count (pg_class.reltuples): no pass over the rows
    past_retention: bool  # its whole range ended before now - OUTBOX_RETENTION_DAYS
    kept_because: str  # why the retention keeps a partition past retention; "" otherwise


def outbox_partitions() -> list[OutboxPartition]:
    """Every partition of the outbox, oldest range first: the cost of a few index probes per
    partition (its unpublished rows and latest published_at), never of its rows."""
    cutoff = timezone.now() - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    found = []
    for partition in partitions_list():
        contents = partition_contents(partition.name)
        past = not partition.is_default and partition.end is not None and partition.end <= cutoff
        kept_because = (retention_blocker(contents, cutoff) or "") if past else ""
        found.append(
            OutboxPartition(
                name=partition.name,
                start=partition.start,
                end=partition.end,
                is_default=partition.is_default,
                pending=contents.pending,
                dead=contents.dead,
                rows_estimate=partition_rows_estimate(partition.name),
                past_retention=past,
                kept_because=kept_because,
            )
        )
    return found


def outbox_audit_reports() -> tuple[AuditReport | None, AuditReport | None]:
    """The delivery audit's last run and its last run with a finding, as it stored them in Redis
    (outbox/audit_window.py): (None, None) before the first run or while Redis is down."""
    return audit_reports()
