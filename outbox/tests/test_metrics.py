"""The outbox's metrics: the gauges read the table (cached, so scrapes cannot load the
database), and the relay's counters move once its outcome is committed."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from outbox.metrics import outbox_collector
from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_run
from outbox.services import event_enqueue
from tests.support.outbox import enqueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _values(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def _registry(**options) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(outbox_collector(**options))
    return registry


@pytest.mark.django_db
def test_gauges_count_pending_and_dead_rows_and_the_oldest_pending_age():
    # given two pending rows (the older one 90 s old) and one dead row
    with transaction.atomic():
        old = event_enqueue(event_type="order.created", key="u1", data={"n": 1})
        event_enqueue(event_type="order.created", key="u2", data={"n": 2})
        dead = event_enqueue(event_type="order.created", key="u3", data={"n": 3})
    OutboxEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(seconds=90))
    OutboxEvent.objects.filter(pk=dead.pk).update(status=OutboxStatus.DEAD)

    # when the worker's registry is scraped
    values = _values(_registry())

    # then the gauges say so
    assert values["outbox_events_pending"] == 2.0
    assert values["outbox_events_dead"] == 1.0
    assert 90.0 <= values["outbox_oldest_pending_age_seconds"] < 150.0


@pytest.mark.django_db
def test_gauges_are_zero_with_an_empty_outbox():
    values = _values(_registry())

    assert (values["outbox_events_pending"], values["outbox_events_dead"]) == (0.0, 0.0)
    assert values["outbox_oldest_pending_age_seconds"] == 0.0


@pytest.mark.django_db
def test_many_scrapes_within_the_cache_window_run_one_query():
    # given a collector with a clock the test moves
    clock = Clock()
    registry = _registry(max_age=5.0, clock=clock)

    # when it is scraped ten times within five seconds
    with CaptureQueriesContext(connection) as queries:
        for _ in range(10):
            _values(registry)
            clock.now += 0.4
    # then the database was asked once
    assert len(queries.captured_queries) == 1

    # and once more after the window, with what changed meanwhile
    with transaction.atomic():
        event_enqueue(event_type="order.created", key="u1", data={"n": 1})
    with CaptureQueriesContext(connection) as queries:
        stale = _values(registry)
        clock.now += 5.0
        fresh = _values(registry)
    assert len(queries.captured_queries) == 1
    assert (stale["outbox_events_pending"], fresh["outbox_events_pending"]) == (0.0, 1.0)


def test_registering_the_collector_does_not_query():
    # no django_db mark: any query would fail the test
    _registry()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_a_relay_run_counts_what_it_published_and_how_long_delivery_took(event_topic):
    # given two pending rows written 3 s ago
    before = {
        "published": _sample("outbox_events_processed_total", status="published"),
        "kafka": _sample(
            "kafka_events_published_total", topic=event_topic, event_type="order.created", status="success"
        ),
        "delay_count": _sample("outbox_delivery_delay_seconds_count"),
        "delay_sum": _sample("outbox_delivery_delay_seconds_sum"),
        "publish_count": _sample("outbox_publish_duration_seconds_count"),
    }
    with transaction.atomic():
        enqueue("k1", {"n": 1})
        enqueue("k2", {"n": 2})
    OutboxEvent.objects.update(created_at=timezone.now() - dt.timedelta(seconds=3))

    # when the relay sends them
    assert relay_run().published == 2

    # then the counters moved by exactly two, and the delivery delay saw about 3 s each
    assert _sample("outbox_events_processed_total", status="published") - before["published"] == 2
    assert (
        _sample("kafka_events_published_total", topic=event_topic, event_type="order.created", status="success")
        - before["kafka"]
        == 2
    )
    assert _sample("outbox_delivery_delay_seconds_count") - before["delay_count"] == 2
    assert 6.0 <= _sample("outbox_delivery_delay_seconds_sum") - before["delay_sum"] < 30.0
    assert _sample("outbox_publish_duration_seconds_count") - before["publish_count"] == 2
