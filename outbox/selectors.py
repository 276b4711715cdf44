"""Reads of the outbox for staff (the operations page). Each one bounded and indexed:
the table holds every published row until the cleanup, millions on a busy day."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count
from django.db.models.functions import TruncMinute

from orders_project.counting import count_bounded
from outbox.models import OutboxEvent, OutboxStatus


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
