"""The delivery auditor's read-back: the records in a few offset ranges of some partitions.

No consumer group (assign and seek, nothing committed), so reading never moves anyone's
offsets and needs no group join. Each partition is read range by range, from its start:
a range is the span of recorded offsets close enough together that reading the records
between them costs less than another fetch (outbox/audit.py makes them), so a batch of rows
published together is one sequential read.

What a range can find besides records (the auditor names each):

* the partition does not exist (topic deleted, or fewer partitions now);
* its start is out of the partition's range: below the log start (retention or a
  truncation deleted it; the read goes on from the log start) or past the end (the topic
  was recreated and holds fewer records now: nothing of the range exists);
* records end before the range does (the high watermark, as the fetch reports it:
  `end_offsets()` is unreliable on Tansu, docs/dev-stack.md).

An offset inside a finished range with no record is absent; ranges not finished before
the deadline are returned as unread, and the auditor judges nothing in them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import OffsetOutOfRangeError

from orders_project.kafka import client_config

# Per partition and fetch: a few hundred events of ~1 KB; small enough that a sparse sample
# (one record wanted per range) does not fetch megabytes for it.
FETCH_BYTES = 256 * 1024
POLL_MS = 200

Range = tuple[int, int]  # first and last offset, both included


@dataclass(slots=True)
class Record:
    offset: int
    key: str | None
    event_id: str | None  # its `event_id` header (the relay sends one with every event)


@dataclass
class PartitionRead:
    exists: bool = True
    records: dict[int, Record] = field(default_factory=dict)  # by offset, only inside the ranges
    # Ranges the deadline cut off (nothing in them is judged).
    unread: list[Range] = field(default_factory=list)


def ranges_of(offsets: list[int], *, gap: int) -> list[Range]:
    """Sorted offsets as ranges: a new range where the next offset is more than `gap` past the last."""
    ranges: list[Range] = []
    for offset in sorted(offsets):
        if ranges and offset - ranges[-1][1] <= gap:
            ranges[-1] = (ranges[-1][0], offset)
        else:
            ranges.append((offset, offset))
    return ranges


def _record(message: object) -> Record:
    key = getattr(message, "key", None)
    event_id = None
    for name, value in getattr(message, "headers", None) or ():
        if name == "event_id":
            event_id = value.decode(errors="replace") if value is not None else None
    return Record(
        offset=getattr(message, "offset"),  # noqa: B009 (a ConsumerRecord; typed loosely by kafka-python)
        key=key.decode(errors="replace") if key is not None else None,
        event_id=event_id,
    )


class _Reader:
    def __init__(self, consumer: KafkaConsumer, todo: dict[TopicPartition, deque[Range]]) -> None:
        self.consumer = consumer
        self.todo = todo
        self.reads = {tp: PartitionRead() for tp in todo}
        self.active = set(todo)

    def _next_range(self, tp: TopicPartition) -> None:
        """The current range of `tp` is done: seek to the next one, or stop reading `tp`."""
        ranges = self.todo[tp]
        ranges.popleft()
        if ranges:
            self.consumer.seek(tp, ranges[0][0])
        else:
            self._finish(tp)

    def _finish(self, tp: TopicPartition) -> None:
        self.todo[tp].clear()
        self.active.discard(tp)
        self.consumer.pause(tp)

    def take(self, tp: TopicPartition, messages: list[object]) -> None:
        ranges, read = self.todo[tp], self.reads[tp]
        for message in messages:
            if not ranges:
                return
            offset = getattr(message, "offset")  # noqa: B009
            if offset < ranges[0][0]:
                continue  # fetched before the last seek: stale
            while ranges and offset > ranges[0][1]:
                ranges.popleft()  # the records of this range ended before it did (gone)
            if not ranges:
                self._finish(tp)
                return
            if offset < ranges[0][0]:
                self.consumer.seek(tp, ranges[0][0])  # skip the stretch between two ranges
                return
            read.records[offset] = _record(message)
            if offset == ranges[0][1]:
                self._next_range(tp)
                return  # the rest of this batch is before the new position: stale

    def out_of_range(self, tp: TopicPartition) -> None:
        """The position of `tp` is outside what the partition holds: below its log start (read on
        from there) or past its end (nothing of the remaining ranges exists)."""
        start = self.consumer.beginning_offsets([tp]).get(tp)
        ranges = self.todo[tp]
        if start is None or start <= ranges[0][0]:
            self._finish(tp)  # past the end
            return
        while ranges and ranges[0][1] < start:
            ranges.popleft()
        if ranges:
            self.consumer.seek(tp, max(start, ranges[0][0]))
        else:
            self._finish(tp)

    def at_end(self) -> None:
        """Partitions whose position reached the high watermark have nothing more to give."""
        for tp in list(self.active):
            highwater = self.consumer.highwater(tp)
            if highwater is not None and self.consumer.position(tp) >= highwater:
                self._finish(tp)


def partitions_read(
    wanted: dict[tuple[str, int], list[Range]], *, timeout: float
) -> dict[tuple[str, int], PartitionRead]:
    """The records in `wanted`'s ranges, per (topic, partition), read before `timeout` seconds pass."""
    consumer = KafkaConsumer(
        **client_config(),
        client_id="order-service-audit",
        group_id=None,
        enable_auto_commit=False,
        # An out-of-range position raises, and the reader finds out which end it passed.
        auto_offset_reset="none",
        # A deleted topic must read as missing, not be created again by the read.
        allow_auto_create_topics=False,
        max_partition_fetch_bytes=FETCH_BYTES,
    )
    try:
        consumer.topics()  # loads the cluster's metadata, which partitions_for_topic only reads
        result: dict[tuple[str, int], PartitionRead] = {}
        todo: dict[TopicPartition, deque[Range]] = {}
        for (topic, partition), ranges in wanted.items():
            if partition in (consumer.partitions_for_topic(topic) or ()) and ranges:
                todo[TopicPartition(topic, partition)] = deque(sorted(ranges))
            else:
                result[topic, partition] = PartitionRead(exists=False)
        if not todo:
            return result
        reader = _Reader(consumer, todo)
        consumer.assign(list(todo))
        for tp, queue in todo.items():
            consumer.seek(tp, queue[0][0])
        deadline = time.monotonic() + timeout
        while reader.active and time.monotonic() < deadline:
            try:
                batch = consumer.poll(timeout_ms=POLL_MS)
            except OffsetOutOfRangeError as exc:
                for tp in exc.args[0] if exc.args and isinstance(exc.args[0], dict) else ():
                    if tp in reader.active:
                        reader.out_of_range(tp)
                continue
            for tp, messages in batch.items():
                if tp in reader.active:
                    reader.take(tp, messages)
            reader.at_end()
        for tp, read in reader.reads.items():
            read.unread = list(todo[tp])
            result[tp.topic, tp.partition] = read
        return result
    finally:
        consumer.close()
