"""The delivery auditor: is what the outbox marked published really on the broker, where it
says, in order?

For published rows with recorded coordinates (outbox/relay.py writes the partition and offset
from Kafka's acknowledgement), read back the records around those offsets (outbox/audit_kafka.py)
and judge each row:

* **misplaced**: the record at (topic, partition, offset) is not this row's event (another
  `event_id` header or key): the topic was recreated and refilled, or something else wrote there;
* **missing**: no record at that offset (the partition or the topic is gone, the partition
  ends before it, or its log starts after it) while the row is younger than the topic's
  retention (`retention.ms`); older than that it is **expired**: deleted as configured, not
  a finding;
* **out of order**: among the first deliveries of the audited events in a partition (the first
  record with each event id), an order's `order_version` goes backwards within its key. The
  key alone holds many orders (the customer's), each with its own versions; events rebuilt by
  a replay (header `replayed`) are sent late on purpose and are left out;
* **duplicates**: further records of an audited event id in what was read (the cost of
  at-least-once: counted, not a finding).

Each range read starts LOOKBACK offsets before its first recorded one, so an earlier copy
of an event (a first delivery the relay did not record) is seen. Order and duplicates are
judged within one batch's reads; a row is judged once per batch that holds it.

Every finding is logged (WARNING) with the row id and its trace id, and counted
(outbox_audit_* metrics); the last run's figures go to the operations page (outbox.selectors).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from orders_project.kafka import client_config
from outbox import metrics
from outbox.audit_kafka import PartitionRead, Range, partitions_read, ranges_of
from outbox.models import OutboxEvent, OutboxStatus

logger = logging.getLogger(__name__)

# Recorded offsets closer than this are read as one range (the records between cost less than a fetch).
RANGE_GAP = 200
# Offsets read before each range's first recorded one: where an earlier copy would be.
LOOKBACK = 20
# Kafka's default retention.ms, for a broker that does not say a topic's own.
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
FINDINGS = ("missing", "misplaced", "out_of_order")


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    event_id: str
    key: str
    topic: str
    partition: int
    offset: int
    published_at: datetime
    trace_id: str | None
    order_id: str | None
    order_version: int | None
    replayed: bool


@dataclass(frozen=True)
class Finding:
    kind: str  # one of FINDINGS
    row: AuditRow
    detail: str

    def describe(self) -> str:
        row = self.row
        return (
            f"{self.kind}: row {row.id} event {row.event_id} key={row.key} at {row.topic} [{row.partition}] "
            f"@ {row.offset:,}: {self.detail} (trace {row.trace_id or '-'})"
        )


@dataclass
class AuditResult:
    checked: int = 0
    missing: int = 0
    misplaced: int = 0
    out_of_order: int = 0
    duplicates: int = 0
    expired: int = 0  # gone, and older than the topic's retention: as configured
    unread: int = 0  # the read's deadline came first: not judged
    findings: list[Finding] = field(default_factory=list)

    def add(self, other: AuditResult) -> None:
        for name in ("checked", "missing", "misplaced", "out_of_order", "duplicates", "expired", "unread"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.findings += other.findings

    @property
    def clean(self) -> bool:
        return not (self.missing or self.misplaced or self.out_of_order)

    def figures(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "missing": self.missing,
            "misplaced": self.misplaced,
            "out_of_order": self.out_of_order,
            "duplicates": self.duplicates,
            "expired": self.expired,
            "unread": self.unread,
        }

    def line(self) -> str:
        rate = f" ({self.duplicates / self.checked:.2%})" if self.checked else ""
        return (
            f"{self.checked} published rows checked against Kafka: {self.missing} missing, {self.misplaced} misplaced, "
            f"{self.out_of_order} out of order; {self.duplicates} duplicates{rate}; "
            f"{self.expired} past the topic's retention, {self.unread} not read in time"
        )


def _trace_id(traceparent: Any) -> str | None:
    parts = str(traceparent).split("-") if traceparent else []
    return parts[1] if len(parts) == 4 else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


_FIELDS = (
    "id",
    "event_id",
    "key",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "published_at",
    "headers__traceparent",
    "payload__data__order_id",
    "payload__data__order_version",
    "headers__replayed",
)


def _audit_row(values: tuple[Any, ...]) -> AuditRow:
    row_id, event_id, key, topic, partition, offset, published_at, traceparent, order_id, version, replayed = values
    return AuditRow(
        id=row_id,
        event_id=str(event_id),
        key=key,
        topic=topic,
        partition=partition,
        offset=offset,
        published_at=published_at,
        trace_id=_trace_id(traceparent),
        order_id=str(order_id) if order_id is not None else None,
        order_version=_int_or_none(version),
        replayed=replayed is not None,
    )


def _published(*, since: datetime, until: datetime, topic: str | None) -> Any:
    rows = OutboxEvent.objects.filter(
        status=OutboxStatus.PUBLISHED, published_at__gte=since, published_at__lt=until, kafka_offset__isnull=False
    )
    return rows.filter(topic=topic) if topic else rows


def rows_after(
    *, since: datetime, until: datetime, after: tuple[datetime, int] | None, limit: int, topic: str | None = None
) -> list[AuditRow]:
    """Up to `limit` published rows with coordinates in [since, until) of published_at, after the
    cursor `after` (published_at, id), in that order: through the published_at partial index."""
    rows = _published(since=since, until=until, topic=topic)
    if after is not None:
        rows = rows.filter(Q(published_at__gt=after[0]) | Q(published_at=after[0], id__gt=after[1]))
    return [_audit_row(values) for values in rows.order_by("published_at", "id").values_list(*_FIELDS)[:limit]]


def rows_sample(*, since: datetime, until: datetime, size: int, topic: str | None = None) -> list[AuditRow]:
    """`size` published rows with coordinates picked at random from [since, until) (reads the window's rows)."""
    rows = _published(since=since, until=until, topic=topic).order_by("?")
    return [_audit_row(values) for values in rows.values_list(*_FIELDS)[:size]]


def topic_retention_ms(topics: set[str]) -> dict[str, int]:
    """Each topic's retention.ms as the broker reports it (-1: for ever); Kafka's default
    where the broker does not answer (a topic that is gone, or a broker without DescribeConfigs)."""
    found = dict.fromkeys(topics, DEFAULT_RETENTION_MS)
    if not topics:
        return found
    try:
        admin = KafkaAdminClient(**client_config(), client_id="order-service-audit-admin")
    except KafkaError:
        return found
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=["retention.ms"]) for topic in sorted(topics)],
            config_filter="all",  # the default too, not only a value set on the topic
        )
        for name, configs in (described.get("topic") or {}).items():
            value = _int_or_none((configs.get("retention.ms") or {}).get("value"))
            if name in found and value is not None:
                found[name] = value
    except (KafkaError, AttributeError, TypeError, ValueError):
        logger.debug("Delivery audit: the broker did not describe the topics' retention", exc_info=True)
    finally:
        admin.close()
    return found


def _absent(row: AuditRow, why: str, retention_ms: int, now: datetime, result: AuditResult) -> None:
    if retention_ms >= 0 and row.published_at < now - timedelta(milliseconds=retention_ms):
        result.expired += 1
        return
    result.missing += 1
    result.findings.append(Finding("missing", row, why))


def _judge_offsets(
    rows: list[AuditRow], read: PartitionRead, retention_ms: int, now: datetime, result: AuditResult
) -> None:
    for row in rows:
        if any(start <= row.offset <= end for start, end in read.unread):
            result.unread += 1
            continue
        result.checked += 1
        if not read.exists:
            _absent(row, "the partition does not exist", retention_ms, now, result)
            continue
        record = read.records.get(row.offset)
        if record is None:
            _absent(row, "no record at this offset", retention_ms, now, result)
        elif record.event_id != row.event_id or record.key != row.key:
            result.misplaced += 1
            detail = f"the record there is event {record.event_id or '(no event_id header)'} key={record.key}"
            result.findings.append(Finding("misplaced", row, detail))


def _judge_order(rows: list[AuditRow], read: PartitionRead, result: AuditResult) -> None:
    """Duplicates of the audited events, and order_version per (key, order) over their first deliveries."""
    by_event = {row.event_id: row for row in rows}
    seen: set[str] = set()
    last: dict[tuple[str, str], tuple[int, AuditRow]] = {}  # (key, order) -> (offset, row) of the newest version
    for offset in sorted(read.records):
        record = read.records[offset]
        row = by_event.get(record.event_id or "")
        if row is None:
            continue
        if row.event_id in seen:
            result.duplicates += 1
            continue
        seen.add(row.event_id)
        if row.replayed or row.order_id is None or row.order_version is None:
            continue
        stream = (row.key, row.order_id)
        before = last.get(stream)
        if before is not None and row.order_version < (before[1].order_version or 0):
            result.out_of_order += 1
            detail = (
                f"order {row.order_id} v{row.order_version} first reached offset {offset:,}, after "
                f"v{before[1].order_version} (row {before[1].id}) at offset {before[0]:,}"
            )
            result.findings.append(Finding("out_of_order", row, detail))
            continue
        last[stream] = (offset, row)


def rows_audit(rows: list[AuditRow], *, timeout: float, now: datetime | None = None) -> AuditResult:
    """Read back and judge `rows` (one batch); log each finding, count the metrics."""
    now = now or timezone.now()
    result = AuditResult()
    if not rows:
        return result
    by_partition: dict[tuple[str, int], list[AuditRow]] = defaultdict(list)
    for row in rows:
        by_partition[row.topic, row.partition].append(row)
    wanted: dict[tuple[str, int], list[Range]] = {
        where: [
            (max(start - LOOKBACK, 0), end) for start, end in ranges_of([row.offset for row in found], gap=RANGE_GAP)
        ]
        for where, found in by_partition.items()
    }
    reads = partitions_read(wanted, timeout=timeout)
    retention = topic_retention_ms({topic for topic, _ in by_partition})
    for where, found in by_partition.items():
        read = reads[where]
        _judge_offsets(found, read, retention[where[0]], now, result)
        if read.exists:
            _judge_order(found, read, result)
    result.findings.sort(key=lambda finding: finding.row.id)
    for finding in result.findings:
        row = finding.row
        logger.warning(
            "Delivery audit: %s",
            finding.describe(),
            extra={
                "outbox_row_id": row.id,
                "event_id": row.event_id,
                "trace_id": row.trace_id,
                "finding": finding.kind,
            },
        )
    metrics.audit_record(result.figures())
    return result


def window_audit(
    *,
    since: datetime,
    until: datetime,
    batch_size: int,
    timeout: float,
    topic: str | None = None,
    sample: int | None = None,
) -> Iterator[AuditResult]:
    """Audit the window batch by batch (each batch read back and judged on its own); a sample
    is one batch of `sample` random rows. Yields each batch's result."""
    if sample is not None:
        yield rows_audit(rows_sample(since=since, until=until, size=sample, topic=topic), timeout=timeout)
        return
    after: tuple[datetime, int] | None = None
    while rows := rows_after(since=since, until=until, after=after, limit=batch_size, topic=topic):
        yield rows_audit(rows, timeout=timeout)
        after = (rows[-1].published_at, rows[-1].id)
