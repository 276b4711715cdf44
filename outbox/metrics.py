"""Prometheus gauges of the outbox, read from the database at scrape time.

`outbox_events{status="pending"|"dead"}` and the age of the oldest pending
row are what an alert needs: dead rows block their key until staff act, and
a growing oldest-pending age means the relay is not keeping up or Kafka is
down. Published rows are not counted (the table may hold millions of them).
"""

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from outbox.models import OutboxEvent, OutboxStatus

logger = logging.getLogger(__name__)


_COUNTS = ("outbox_events", "Outbox rows waiting to be sent or dead")
_OLDEST = ("outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row (0 if none)")


class OutboxCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without describe(), registering would call collect() and query the
        # database at start-up, before it may even exist.
        yield GaugeMetricFamily(*_COUNTS, labels=["status"])
        yield GaugeMetricFamily(*_OLDEST)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            rows = (
                OutboxEvent.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.DEAD])
                .values("status")
                .annotate(count=Count("id"), oldest=Min("created_at"))
            )
            by_status = {row["status"]: row for row in rows}
        except DatabaseError:
            logger.warning("Outbox metrics unavailable: database error", exc_info=True)
            return
        counts = GaugeMetricFamily(*_COUNTS, labels=["status"])
        for status in (OutboxStatus.PENDING, OutboxStatus.DEAD):
            counts.add_metric([status], by_status[status]["count"] if status in by_status else 0)
        yield counts
        pending = by_status.get(OutboxStatus.PENDING)
        age = (timezone.now() - pending["oldest"]).total_seconds() if pending else 0.0
        yield GaugeMetricFamily(*_OLDEST, value=age)
