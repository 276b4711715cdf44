"""What the user-event consumer tells the web about itself: its lag and its last event.

The consumer runs in its own process (`manage.py consume_user_events`, one per pod);
the operations page runs in the web. Every few seconds each consumer writes one
field of a small Redis hash, `consumer-status:<group>`, keyed by its member
name (host:pid); the web reads the hash and sums the members that reported lately.
Redis is the replica's own (users_cache.store.redis_client): the consumer talks to
it anyway, and a report costs one pipeline round trip every PUBLISH_INTERVAL_SECONDS.

A report never stops the consumer: a Redis error is logged and the next one tries again.
"""

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from users_cache.store import redis_client

logger = logging.getLogger(__name__)

PUBLISH_INTERVAL_SECONDS = 5.0
# A member that has not reported for this long is taken to be gone (stopped, or stuck).
STALE_AFTER_SECONDS = 60.0
# Members gone this long are removed from the hash by the next report of any member
# (pods get new names at every restart: the hash would grow without it).
FORGET_AFTER_SECONDS = 3600.0
# The whole hash goes when no consumer of the group has reported for this long.
KEY_TTL_SECONDS = 24 * 3600


def status_key(group_id: str) -> str:
    """The Redis hash of a consumer group's status reports (one field per member)."""
    # Outside users:*, the replica's own keys (tests compare those byte for byte).
    return f"consumer-status:{group_id}"


def consumer_lag_by_topic(consumer: Any) -> dict[str, int]:
    """Messages on the assigned partitions not read yet, per topic, from what the last
    fetches told (highwater) and the read positions: the one home of the lag figure
    (status report, metrics gauge, progress line). Partitions nothing was fetched
    from yet count nothing."""
    lag: dict[str, int] = {}
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        if highwater is not None:
            lag[partition.topic] = lag.get(partition.topic, 0) + max(highwater - consumer.position(partition), 0)
    return lag


def consumer_lag(consumer: Any) -> int:
    """Messages on the assigned partitions not read yet, summed over the topics."""
    return sum(consumer_lag_by_topic(consumer).values())


class ConsumerStatusReporter:
    """Called once per poll loop by the consumer; writes at most every `interval` seconds."""

    def __init__(self, *, group_id: str, interval: float = PUBLISH_INTERVAL_SECONDS) -> None:
        self.key = status_key(group_id)
        self.member = f"{socket.gethostname()}:{os.getpid()}"
        self.interval = interval
        self.last_event_ms: int | None = None  # Kafka timestamp of the newest message handled
        self.last_handled_at: float | None = None
        self._last_report = 0.0

    def observe(self, consumer: Any, batch: dict[Any, list[Any]]) -> None:
        newest = max((int(record.timestamp) for records in batch.values() for record in records), default=None)
        if newest is not None:
            self.last_event_ms = max(self.last_event_ms or 0, newest)
            self.last_handled_at = time.time()
        if time.monotonic() - self._last_report < self.interval:
            return
        self._last_report = time.monotonic()
        report = {
            "lag": consumer_lag(consumer),
            "last_event_ms": self.last_event_ms,
            "last_handled_at": self.last_handled_at,
            "reported_at": time.time(),
        }
        try:
            status_write(key=self.key, member=self.member, report=report)
        except RedisError as exc:
            logger.warning("Cannot write the consumer status to Redis (%r); next try in %.0fs", exc, self.interval)

    def withdraw(self) -> None:
        """Remove this member's report (a clean stop); the hash goes with its last member."""
        try:
            redis_client().hdel(self.key, self.member)
        except RedisError as exc:
            logger.warning("Cannot remove the consumer status from Redis (%r); it goes stale in a minute", exc)


def status_write(*, key: str, member: str, report: dict[str, Any]) -> None:
    redis = redis_client()
    now = float(report["reported_at"])
    gone = [
        name
        for name, value in redis.hgetall(key).items()
        if now - float(json.loads(value).get("reported_at", 0)) > FORGET_AFTER_SECONDS
    ]
    pipe = redis.pipeline()
    pipe.hset(key, member, json.dumps(report))
    if gone:
        pipe.hdel(key, *gone)
    pipe.expire(key, KEY_TTL_SECONDS)
    pipe.execute()


@dataclass(frozen=True)
class ConsumerStatus:
    members: int  # consumers of the group that reported within STALE_AFTER_SECONDS
    lag: int  # summed over them
    last_event_at: datetime | None  # Kafka time of the newest message any of them handled
    last_handled_at: datetime | None  # when that was handled
    reported_at: datetime | None  # newest report of any member (None: never, or all stale)


def _utc(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds else None


def status_read(*, group_id: str, now: float | None = None) -> ConsumerStatus:
    """The group's live members summed. Raises RedisError when Redis is down."""
    now = time.time() if now is None else now
    reports = [json.loads(value) for value in redis_client().hgetall(status_key(group_id)).values()]
    live = [report for report in reports if now - float(report.get("reported_at", 0)) <= STALE_AFTER_SECONDS]
    last_ms = max((report["last_event_ms"] for report in live if report.get("last_event_ms")), default=None)
    handled = max((report["last_handled_at"] for report in live if report.get("last_handled_at")), default=None)
    reported = max((report["reported_at"] for report in live), default=None)
    return ConsumerStatus(
        members=len(live),
        lag=sum(int(report.get("lag", 0)) for report in live),
        last_event_at=_utc(last_ms / 1000) if last_ms else None,
        last_handled_at=_utc(handled),
        reported_at=_utc(reported),
    )
