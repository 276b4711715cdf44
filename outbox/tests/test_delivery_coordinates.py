"""Where Kafka put each published row: recorded from the acknowledgement, in the outcome's one
UPDATE, and shown as "topic [partition] @ offset" ("unknown" for rows published before)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_batch
from tests.support.outbox import all_published, consume, enqueue, relay_until


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_each_published_row_records_the_partition_and_offset_its_record_has_on_kafka(event_topic):
    # given events over three keys, relayed
    written = [enqueue(f"k{n % 3}", {"n": n}) for n in range(9)]
    relay_until(all_published)

    # then each row's coordinates are where its event is on the topic
    messages = consume(event_topic, [str(row.event_id) for row in written])
    where = {message.event_id: (message.partition, message.offset) for message in messages}
    assert len(where) == len(messages) == 9
    for row in OutboxEvent.objects.all():
        assert (row.kafka_partition, row.kafka_offset) == where[str(row.event_id)]
        assert row.delivery == f"{event_topic} [{row.kafka_partition}] @ {row.kafka_offset:,}"


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_recording_the_coordinates_costs_no_statement(event_topic):
    # given a batch of events over two keys
    for n in range(6):
        enqueue(f"k{n % 2}", {"n": n})

    # when one batch is relayed
    with CaptureQueriesContext(connection) as queries:
        assert relay_batch(producer=None, batch_size=10) == (6, 0)

    # then it took the claim and the outcome's UPDATE, as before: no statement per event
    assert len(queries.captured_queries) == 2, [query["sql"][:80] for query in queries.captured_queries]
    assert not OutboxEvent.objects.filter(kafka_offset__isnull=True).exists()


def _row(status: str, partition: int | None = None, offset: int | None = None) -> OutboxEvent:
    now = timezone.now()
    return OutboxEvent(
        event_id=uuid.uuid4(),
        event_type="order.created",
        topic="order.created",
        key="user123",
        payload={},
        status=status,
        created_at=now,
        next_attempt_at=now,
        kafka_partition=partition,
        kafka_offset=offset,
    )


def test_coordinates_read_as_topic_partition_and_offset_unknown_when_not_recorded_and_dash_when_not_published():
    assert _row(OutboxStatus.PUBLISHED, 2, 18443).delivery == "order.created [2] @ 18,443"
    assert _row(OutboxStatus.PUBLISHED).delivery == "unknown"
    assert _row(OutboxStatus.PENDING).delivery == "-"
    assert _row(OutboxStatus.DEAD).delivery == "-"
