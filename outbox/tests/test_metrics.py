"""/metrics exposes pending and dead outbox counts and the oldest pending age."""

import datetime as dt
import re

import pytest
from django.db import transaction
from django.utils import timezone

from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import event_enqueue

pytestmark = pytest.mark.django_db


def _metric(text: str, line_start: str) -> float:
    match = re.search(rf"^{re.escape(line_start)} (\S+)$", text, re.MULTILINE)
    assert match, f"{line_start} not in /metrics"
    return float(match.group(1))


def test_metrics_count_pending_and_dead_rows_and_the_oldest_pending_age(client):
    # given two pending rows (the older one 90 s old) and one dead row
    with transaction.atomic():
        old = event_enqueue(event_type="order.created", key="u1", data={"n": 1})
        event_enqueue(event_type="order.created", key="u2", data={"n": 2})
        dead = event_enqueue(event_type="order.created", key="u3", data={"n": 3})
    OutboxEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(seconds=90))
    OutboxEvent.objects.filter(pk=dead.pk).update(status=OutboxStatus.DEAD)

    # when Prometheus scrapes
    text = client.get("/metrics").content.decode()

    # then the gauges say so
    assert _metric(text, 'outbox_events{status="pending"}') == 2.0
    assert _metric(text, 'outbox_events{status="dead"}') == 1.0
    assert 90.0 <= _metric(text, "outbox_oldest_pending_age_seconds") < 150.0


def test_metrics_are_zero_with_an_empty_outbox(client):
    text = client.get("/metrics").content.decode()

    assert _metric(text, 'outbox_events{status="pending"}') == 0.0
    assert _metric(text, 'outbox_events{status="dead"}') == 0.0
    assert _metric(text, "outbox_oldest_pending_age_seconds") == 0.0
