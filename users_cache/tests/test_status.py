"""The consumer's status report (users_cache.status): written from the consumer loop,
read by the web's operations page through users_cache.services."""

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from orders_project.errors import ServiceUnavailableError
from tests.support.users import at, created
from tests.support.waiting import wait_for
from users_cache import services, status
from users_cache.status import FORGET_AFTER_SECONDS, ConsumerStatusReporter, status_read, status_write
from users_cache.store import redis_client


@dataclass(frozen=True)
class Partition:
    topic: str
    partition: int


@dataclass
class Record:
    timestamp: int


class FakeConsumer:
    """What the reporter asks of a KafkaConsumer: assignment, highwater, position."""

    def __init__(self, positions: dict[Partition, tuple[int | None, int]]) -> None:
        self.positions = positions  # partition -> (highwater, position)

    def assignment(self) -> set[Partition]:
        return set(self.positions)

    def highwater(self, partition: Partition) -> int | None:
        return self.positions[partition][0]

    def position(self, partition: Partition) -> int:
        return self.positions[partition][1]


@pytest.fixture
def group() -> str:
    return f"group-{uuid.uuid4().hex[:8]}"


def test_the_reporter_writes_lag_and_last_event_at_most_once_per_interval(group):
    created, deleted = Partition("user.created", 0), Partition("user.deleted", 1)
    consumer = FakeConsumer({created: (120, 100), deleted: (None, 0)})  # nothing fetched yet from deleted
    reporter = ConsumerStatusReporter(group_id=group, interval=60)

    reporter.observe(consumer, {created: [Record(1_700_000_000_000), Record(1_700_000_005_000)]})
    consumer.positions[created] = (120, 120)
    reporter.observe(consumer, {})  # within the interval: not written

    read = status_read(group_id=group)
    assert (read.members, read.lag) == (1, 20)
    assert read.last_event_at == datetime(2023, 11, 14, 22, 13, 25, tzinfo=UTC)
    assert read.last_handled_at is not None and read.reported_at is not None


def test_members_are_summed_and_a_silent_member_is_left_out(group):
    now = time.time()
    key = status.status_key(group)
    status_write(key=key, member="a:1", report={"lag": 3, "last_event_ms": 1000, "reported_at": now - 1})
    status_write(key=key, member="b:2", report={"lag": 4, "last_event_ms": 5000, "reported_at": now - 2})
    status_write(key=key, member="gone:3", report={"lag": 900, "last_event_ms": 9000, "reported_at": now - 300})

    read = status_read(group_id=group, now=now)

    assert (read.members, read.lag) == (2, 7)
    assert read.last_event_at == datetime.fromtimestamp(5, tz=UTC)


def test_a_report_forgets_members_gone_for_an_hour(group):
    now = time.time()
    key = status.status_key(group)
    status_write(key=key, member="old:1", report={"lag": 1, "reported_at": now - FORGET_AFTER_SECONDS - 1})

    status_write(key=key, member="new:2", report={"lag": 0, "reported_at": now})

    assert set(redis_client().hkeys(key)) == {b"new:2"}
    assert 0 < redis_client().ttl(key) <= status.KEY_TTL_SECONDS


def test_no_report_reads_as_no_consumer(group):
    read = services.consumer_status_get(group_id=group)

    assert (read.members, read.lag, read.last_event_at, read.reported_at) == (0, 0, None, None)


def test_redis_down_neither_stops_the_consumer_nor_breaks_the_page(group, monkeypatch):
    def down(**kwargs: Any) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(status, "status_write", down)
    monkeypatch.setattr(status, "redis_client", lambda: (_ for _ in ()).throw(RedisConnectionError("refused")))
    reporter = ConsumerStatusReporter(group_id=group, interval=0)

    reporter.observe(FakeConsumer({}), {})  # logs, does not raise

    with pytest.raises(ServiceUnavailableError):
        services.consumer_status_get(group_id=group)


@pytest.mark.kafka
def test_the_running_consumer_reports_its_last_event_to_the_web(send, start_consumer):
    consumer = start_consumer()
    consumer.consumer.status.interval = 0.0  # report at every loop turn: the test need not wait 5 s
    sent_at = datetime.now(UTC)

    send(("user.created", created("status-u1", at(0))))
    consumer.wait_total(1)
    read = wait_for(
        lambda: (found := services.consumer_status_get(group_id=consumer.group_id)).last_event_at and found,
        "the consumer's report of its event",
    )

    # the message's Kafka time (the producer's clock, to the millisecond), and nothing left to read
    assert read.members == 1
    assert read.lag == 0
    assert abs((read.last_event_at - sent_at).total_seconds()) < 5

    consumer.consumer.stop.set()
    consumer.thread.join(30)
    # a clean stop takes its report back: the page says "no consumer" at once
    assert services.consumer_status_get(group_id=consumer.group_id).members == 0
    assert not redis_client().exists(status.status_key(consumer.group_id))
