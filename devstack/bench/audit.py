"""python -m devstack.bench audit [--events N] [--keys K] [--partitions P] [--batch-size B].

The delivery auditor's cost. N events over K keys written (relay_parts.outbox_fill) to a topic
of the run's own with P partitions, relayed by relay_run in this process (so every row has
its coordinates), then, on the same broker:
* the baseline: a bare kafka-python consumer (no group) reading every partition of the
  topic from its beginning to its end, keeping each record's offset, key and event_id
  header: what reading the records back costs at least;
* the auditor: outbox.audit.window_audit over the rows' publication window, in batches of
  B (OUTBOX_AUDIT_BATCH_SIZE, as beat's runs take them): its database read, the read-back
  at the recorded coordinates and the judgement. It must find nothing.
Each gives events/s and this process's CPU per event (kafka-python's threads included;
PostgreSQL's and the broker's not). Against the servers the environment names (`make bench`:
a fresh stack with Tansu). The rows it wrote are deleted afterwards. Last line: `figures: {json}`.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.utils import timezone
from kafka import KafkaConsumer, TopicPartition

from devstack.bench import BenchError, bench_parser
from devstack.bench.relay_parts import outbox_fill
from orders_project.kafka import client_config, topics_create
from outbox.audit import AuditResult, window_audit
from outbox.models import OutboxEvent, OutboxStatus
from outbox.producer import producer_discard
from outbox.relay import relay_run

_DEADLINE_SECONDS = 600.0


def _parser() -> Any:
    parser = bench_parser("audit", __doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=settings.OUTBOX_AUDIT_BATCH_SIZE)
    return parser


def _say(line: str) -> None:
    print(line, flush=True)


def _relay_all(topic: str, events: int) -> None:
    deadline = time.monotonic() + _DEADLINE_SECONDS
    while OutboxEvent.objects.filter(topic=topic, status=OutboxStatus.PENDING).exists():
        if time.monotonic() > deadline:
            raise BenchError(f"the relay did not publish {events} events in {_DEADLINE_SECONDS:.0f} s")
        relay_run(time_budget=30.0)


def _bare_read(topic: str) -> tuple[int, float, float]:
    """Every record of `topic` read from the beginning by a bare consumer: (records, seconds, CPU seconds)."""
    consumer = KafkaConsumer(**client_config(), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        started, cpu_started = time.monotonic(), time.process_time()
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        kept: list[tuple[int, bytes | None, bytes | None]] = []
        deadline = started + _DEADLINE_SECONDS
        done: set[TopicPartition] = set()
        while len(done) < len(partitions) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    event_id = next((value for name, value in record.headers if name == "event_id"), None)
                    kept.append((record.offset, record.key, event_id))
            for tp in partitions:
                highwater = consumer.highwater(tp)
                if highwater is not None and consumer.position(tp) >= highwater:
                    done.add(tp)
        return len(kept), time.monotonic() - started, time.process_time() - cpu_started
    finally:
        consumer.close()


def main(argv: list[str]) -> None:
    options = _parser().parse_args(argv)
    events = options.events
    topic = f"bench-audit-{uuid.uuid4().hex[:8]}"
    others = OutboxEvent.objects.filter(status=OutboxStatus.PENDING).count()
    if others:
        raise BenchError(f"The outbox has {others} pending rows this bench did not write; drain them first.")
    with override_settings(KAFKA_TOPICS=dict.fromkeys(settings.KAFKA_TOPICS, topic)):
        try:
            topics_create(partitions=options.partitions, replication_factor=1)
            since = timezone.now() - timedelta(seconds=1)
            outbox_fill(topic=topic, events=events, keys=options.keys)
            _relay_all(topic, events)
            until = timezone.now() + timedelta(seconds=1)
            read, bare_seconds, bare_cpu = _bare_read(topic)
            if read != events:
                raise BenchError(f"the bare read found {read} records of {events}")
            _say(
                f"bare read-back: {read} records in {bare_seconds:.2f} s = {read / bare_seconds:.0f}/s; "
                f"CPU {bare_cpu / read * 1e6:.0f} us/record"
            )
            total = AuditResult()
            started, cpu_started = time.monotonic(), time.process_time()
            for result in window_audit(
                since=since, until=until, batch_size=options.batch_size, timeout=_DEADLINE_SECONDS
            ):
                total.add(result)
            seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
            if total.checked != events or not total.clean:
                raise BenchError(f"the audit did not check {events} rows cleanly: {total.line()}")
            _say(
                f"audit: {total.checked} events in {seconds:.2f} s = {total.checked / seconds:.0f} events/s; "
                f"CPU {cpu / total.checked * 1e6:.0f} us/event (batches of {options.batch_size}); {total.line()}"
            )
            figures = {
                "events": events,
                "batch_size": options.batch_size,
                "rate": round(total.checked / seconds),
                "cpu_us_per_event": round(cpu / total.checked * 1e6),
                "bare_rate": round(read / bare_seconds),
                "bare_cpu_us_per_event": round(bare_cpu / read * 1e6),
                "duplicates": total.duplicates,
            }
            _say(f"figures: {json.dumps(figures)}")  # for devstack/bench/run.py
        finally:
            producer_discard()  # the relay's, made for this broker
            deleted, _ = OutboxEvent.objects.filter(topic=topic).delete()
            _say(f"deleted {deleted} outbox rows of {topic}")
            connections.close_all()
