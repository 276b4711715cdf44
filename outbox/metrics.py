"""Metrics of the outbox: what the relay did (counters, histograms) and what waits (gauges).

The counters are written where the relay runs (the worker's pool processes) once the
outcome is committed. The gauges need a query; they are served by the worker only
(orders_project/celery_metrics.py), computed at most every few seconds
(orders_project.metrics.CachedQueryCollector). Dead rows block their key until staff
act; a growing oldest-pending age means the relay is not keeping up or Kafka is down.
Published rows are not counted (the table may hold millions of them).

The storage gauges (sizes, dead tuples, partitions) come from the catalogs only
(outbox/storage.py): a scrape costs the same at ten rows and at a billion.
"""

import collections
import datetime as dt
import time
from collections.abc import Iterable
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from orders_project.metrics import CachedQueryCollector
from outbox.models import OutboxEvent, OutboxStatus
from outbox.storage import DEFAULT_ROWS_COUNTED, outbox_storage

events_processed = Counter(
    "outbox_events_processed_total",
    "Outbox rows the relay finished an attempt on: published, failed (retry scheduled) or dead",
    ["status"],
)
retry_attempts = Counter("outbox_retry_attempts_total", "Sends of outbox rows that had failed before")
publish_duration = Histogram(
    "outbox_publish_duration_seconds",
    "From handing one event to the Kafka producer to its acknowledgement",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# The service-level indicator: how long after its change committed an event was in Kafka.
delivery_delay = Histogram(
    "outbox_delivery_delay_seconds",
    "From the outbox row's commit (created_at) to Kafka's acknowledgement, as the relay records it",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
)
kafka_published = Counter(
    "kafka_events_published_total",
    "Events sent to Kafka by the relay, by outcome (success or failure)",
    ["topic", "event_type", "status"],
)

# The delivery auditor (outbox/audit.py): rows it read back from Kafka and what it found.
# No labels, so each is exposed (at 0) from the start and the alert's rate() has a series.
audit_counters = {
    "checked": Counter("outbox_audit_checked_total", "Published outbox rows the delivery auditor read back from Kafka"),
    "missing": Counter(
        "outbox_audit_missing_total",
        "Audited rows with no record at their recorded offset while younger than the topic's retention",
    ),
    "misplaced": Counter(
        "outbox_audit_misplaced_total", "Audited rows whose recorded offset holds another event or key"
    ),
    "out_of_order": Counter(
        "outbox_audit_out_of_order_total",
        "Audited events whose first delivery came after a later version of their order (same key)",
    ),
    "duplicates": Counter(
        "outbox_audit_duplicates_total", "Further copies of audited events seen on Kafka (the at-least-once cost)"
    ),
}


def audit_record(figures: dict[str, int]) -> None:
    """Count one audit batch's figures (the keys of audit_counters; others are ignored)."""
    for name, counter in audit_counters.items():
        if figures.get(name):
            counter.inc(figures[name])


dead_resubmitted = Counter(
    "outbox_dead_resubmitted_total",
    "Dead outbox rows the automatic resubmission set back to pending (OUTBOX_DEAD_RESUBMIT_MAX)",
    ["event_type"],
)


def dead_resubmitted_record(counts: collections.Counter[str]) -> None:
    """Count one resubmission batch by event type. Call it once the batch is committed (on_commit)."""
    for event_type, count in counts.items():
        dead_resubmitted.labels(event_type=event_type).inc(count)


def publish_timer(future: Any) -> None:
    """Observe publish_duration when the producer's `future` is acknowledged (in the producer's thread)."""
    started = time.monotonic()
    future.add_callback(lambda _metadata: publish_duration.observe(time.monotonic() - started))


class _Row(Protocol):
    topic: str
    event_type: str
    created_epoch: float  # the row's created_at in seconds since the epoch


def relay_outcome_record(
    *, published: Iterable[_Row], failed: Iterable[_Row], dead: Iterable[_Row], retried: int
) -> None:
    """Count one relay batch's outcome. Call it once the outcome is committed (on_commit).

    One increment per label set and status, not per row (a batch has one or a few topics);
    the delivery delay is observed per row.
    """
    now = time.time()  # timezone.now()'s clock
    observe = delivery_delay.observe
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for row in published:
        counts["published", row.topic, row.event_type] += 1
        observe(max(now - row.created_epoch, 0.0))
    for status, rows in (("failed", failed), ("dead", dead)):
        for row in rows:
            counts[status, row.topic, row.event_type] += 1
    processed: collections.Counter[str] = collections.Counter()
    for (status, topic, event_type), count in counts.items():
        processed[status] += count
        outcome = "success" if status == "published" else "failure"
        kafka_published.labels(topic=topic, event_type=event_type, status=outcome).inc(count)
    for status, count in processed.items():
        events_processed.labels(status=status).inc(count)
    if retried:
        retry_attempts.inc(retried)


_PENDING = ("outbox_events_pending", "Outbox rows waiting to be sent (database-wide)")
_DEAD = ("outbox_events_dead", "Outbox rows that failed too often and block their key until staff act")
_OLDEST = ("outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row (0 if none)")


def _describe() -> list[Metric]:
    return [GaugeMetricFamily(*_PENDING), GaugeMetricFamily(*_DEAD), GaugeMetricFamily(*_OLDEST)]


def _compute() -> list[Metric]:
    # One statement; counts over the pending partial index and the dead rows only.
    rows = (
        OutboxEvent.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.DEAD])
        .values("status")
        .annotate(count=Count("id"), oldest=Min("created_at"))
        .order_by()
    )
    by_status = {row["status"]: row for row in rows}
    pending = by_status.get(OutboxStatus.PENDING)
    dead = by_status.get(OutboxStatus.DEAD)
    age = max((timezone.now() - pending["oldest"]).total_seconds(), 0.0) if pending else 0.0
    return [
        GaugeMetricFamily(*_PENDING, value=pending["count"] if pending else 0),
        GaugeMetricFamily(*_DEAD, value=dead["count"] if dead else 0),
        GaugeMetricFamily(*_OLDEST, value=age),
    ]


def outbox_collector(**options: Any) -> CachedQueryCollector:
    """The outbox gauges, cached (options: max_age, clock; see CachedQueryCollector)."""
    return CachedQueryCollector(_compute, describe=_describe, **options)


_STORAGE = {
    "table": ("outbox_table_size_bytes", "The outbox's heap and TOAST on disk, every partition"),
    "index": ("outbox_index_size_bytes", "The outbox's indexes on disk, every partition"),
    "dead": ("outbox_dead_tuples", "Dead row versions in the outbox that vacuum has not removed yet (statistics)"),
    "partitions": ("outbox_partitions", "Partitions of the outbox, DEFAULT included; 0 while it is a plain table"),
    "oldest": (
        "outbox_oldest_partition_age_seconds",
        "Since the lower bound of the oldest outbox partition (its upper bound for MINVALUE); 0 when none",
    ),
    "past": (
        "outbox_partitions_past_retention",
        "Outbox partitions whose whole range is older than OUTBOX_RETENTION_DAYS and that still exist",
    ),
    "default": (
        "outbox_default_partition_rows",
        f"Rows in the outbox's DEFAULT partition (should be 0), counted up to {DEFAULT_ROWS_COUNTED + 1}",
    ),
}


def _storage_describe() -> list[Metric]:
    return [GaugeMetricFamily(*names) for names in _STORAGE.values()]


def _storage_compute(table: str | None) -> list[Metric]:
    now = timezone.now()
    storage = outbox_storage(now=now, retention=dt.timedelta(days=settings.OUTBOX_RETENTION_DAYS), table=table)
    oldest = storage.oldest_partition_start
    values = {
        "table": storage.table_bytes,
        "index": storage.index_bytes,
        "dead": storage.dead_tuples,
        "partitions": len(storage.partitions),
        "oldest": max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        "past": len(storage.past_retention),
        "default": storage.default_rows,
    }
    return [GaugeMetricFamily(*_STORAGE[key], value=value) for key, value in values.items()]


def outbox_storage_collector(*, table: str | None = None, **options: Any) -> CachedQueryCollector:
    """The size, dead tuples and partitions of `table` (default: the outbox's), cached like
    outbox_collector's gauges."""
    return CachedQueryCollector(lambda: _storage_compute(table), describe=_storage_describe, **options)
