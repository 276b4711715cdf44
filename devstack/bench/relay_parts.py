"""The parts of the relay throughput bench (`python -m devstack.bench relay`), apart from its flow.

* `outbox_fill`: N pending events over K keys in one INSERT ... SELECT generate_series
  (200,000 rows in seconds; the ORM would take minutes), shaped like events_enqueue's
  (an order.created envelope, its headers with a traceparent), key `bench-user-<n % K>`,
  data `{"seq": n}`: about 200 bytes a message, as in docs/performance.md's relay figures (a real
  order.created of two items is about 600; with those the broker, not the producer,
  sets the pace, and both the relay and the baseline slow down).
* `messages_load` + `bare_produce`: the baseline, a bare kafka-python producer built by
  producer_new() (the relay's settings) sending the very bytes the relay sends
  (relay.message_encode of the stored payload text), encoded beforehand: fire-and-forget (send all, then flush), or
  in batches that each wait for their acknowledgements, like a relay batch.
* `relays_run`: N relays as separate processes (`python -m devstack.bench relay --drain`),
  each with its own producer and connection, released together once all are ready.
* `ClaimTimer`: notes each claim statement's time in a relay process.
* `order_check`: reads the topic back and checks that each key's events arrived in the
  order they were written (outbox id order), however many relays sent them.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from kafka import KafkaConsumer, TopicPartition

from orders_project import contract
from orders_project.kafka import producer_new
from orders_project.rfc3339 import rfc3339
from outbox.relay import message_encode

Message = tuple[bytes, bytes, list[tuple[str, bytes]]]

_FILL_SQL = """
INSERT INTO outbox_outboxevent (event_id, event_type, topic, key, payload, headers, status, attempts,
    next_attempt_at, last_error, created_at)
SELECT e.event_id, 'order.created', %(topic)s, e.key,
    jsonb_build_object('event_id', e.event_id, 'event_type', 'order.created', 'timestamp', %(now)s,
        'version', %(version)s,
        'data', jsonb_build_object('seq', e.n)),
    jsonb_build_object('event_id', e.event_id, 'event_type', 'order.created',
        'traceparent', '00-' || md5(e.event_id::text) || '-' || left(md5(e.key), 16) || '-01'),
    'pending', 0, now(), '', now()
FROM (
    SELECT n, gen_random_uuid() AS event_id, 'bench-user-' || (n %% %(keys)s) AS key
    FROM generate_series(0, %(events)s - 1) AS n
) AS e
ORDER BY e.n
"""


def outbox_fill(*, topic: str, events: int, keys: int, vacuum: bool = True) -> None:
    """Write `events` pending rows over `keys` keys (interleaved, ids in write order), then vacuum and
    analyze the table so every phase starts from the same state (as autovacuum leaves a table);
    `vacuum=False` leaves the table as the burst of writes left it (as after an outage)."""
    now = rfc3339(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            _FILL_SQL,
            {
                "topic": topic,
                "events": events,
                "keys": keys,
                "now": now,
                "version": contract.event_version("order.created"),
            },
        )
        if vacuum:
            cursor.execute("VACUUM ANALYZE outbox_outboxevent")


def messages_load(*, topic: str) -> list[Message]:
    """The topic's outbox rows as the relay would send them, in write order."""
    # Django loads jsonb as text (as the relay's claim does): the payload as the relay sends it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, payload, headers FROM outbox_outboxevent WHERE topic = %s ORDER BY id", [topic])
        return [message_encode(key, payload, json.loads(headers)) for key, payload, headers in cursor.fetchall()]


def bare_produce(messages: list[Message], *, topic: str, batch: int | None) -> tuple[float, float]:
    """Send the messages with a fresh producer_new(). Returns the seconds until the last is
    acknowledged and the CPU seconds this process spent meanwhile (the producer's thread included).

    batch None: fire-and-forget (send every message, then one flush). batch B: B messages
    sent, then flushed and every acknowledgement of those awaited, and so on (what a relay
    batch does). The connection and the topic's metadata are fetched before the clock starts.
    """
    producer = producer_new()
    try:
        producer.partitions_for(topic)
        started, cpu_started = time.monotonic(), time.process_time()
        if batch is None:
            for key, value, headers in messages:
                producer.send(topic, key=key, value=value, headers=headers)
            producer.flush(timeout=60)
        else:
            for start in range(0, len(messages), batch):
                futures = [
                    producer.send(topic, key=key, value=value, headers=headers)
                    for key, value, headers in messages[start : start + batch]
                ]
                producer.flush(timeout=10)
                for future in futures:
                    future.get(timeout=10)
        return time.monotonic() - started, time.process_time() - cpu_started
    finally:
        producer.close(timeout=5)


@dataclass
class RelayProcesses:
    seconds: float
    published: list[int] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # each process's, user + system
    idle_polls: list[int] = field(default_factory=list)  # runs that found every due key leased by others
    peak_rss_mb: list[float] = field(default_factory=list)  # each process's maximum resident set
    first_rss_mb: list[float] = field(default_factory=list)  # ... after its first relay run
    claim_ms: list[float] = field(default_factory=list)  # every claim statement's time, all processes


def relays_run(count: int, *, topic: str, batch_size: int, log_level: str, timeout: float) -> RelayProcesses:
    """Run `count` relay processes until the outbox has no pending row; time from their release to the last exit.

    Each process starts, opens its producer (bootstrap, idempotent producer id, the
    topic's metadata) and its database connection, says "ready", and waits for "go"
    on its stdin; its last stdout line is its figures as JSON.
    """
    # log_level: a deployment's (INFO) by default, where the bench's other processes run at
    # WARNING: what a relay logs per run and per event is part of its cost.
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": ",".join(settings.KAFKA_BOOTSTRAP_SERVERS), "LOG_LEVEL": log_level}
    command = [sys.executable, "-m", "devstack.bench", "relay", "--drain", topic, "--batch-size", str(batch_size)]
    with tempfile.TemporaryFile("w+") as logs:
        procs = [
            subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,  # the checkout, where devstack is importable
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs,
                text=True,
            )
            for _ in range(count)
        ]
        try:
            seconds, outputs = _release(procs, timeout=timeout)
        except Exception as exc:
            logs.seek(0)
            raise RuntimeError(f"relay processes failed: {exc!r}\n{logs.read()[-3000:]}") from exc
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    result = RelayProcesses(seconds=seconds)
    for output in outputs:
        figures = json.loads(output.strip().splitlines()[-1])
        result.published.append(figures["published"])
        result.cpu_seconds.append(figures["cpu_seconds"])
        result.idle_polls.append(figures["idle_polls"])
        result.peak_rss_mb.append(figures["peak_rss_mb"])
        result.first_rss_mb.append(figures["first_rss_mb"])
        result.claim_ms += figures["claim_ms"]
    return result


def _release(procs: list[subprocess.Popen[str]], *, timeout: float) -> tuple[float, list[str]]:
    """Wait for every process's "ready", send "go" to all, wait for all to exit: (seconds, their stdout)."""
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"a relay process did not start: {line!r}")
    started = time.monotonic()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
        proc.stdin = None  # communicate() below must not flush it
    outputs = [proc.communicate(timeout=max(timeout - (time.monotonic() - started), 1))[0] for proc in procs]
    seconds = time.monotonic() - started
    for proc, output in zip(procs, outputs, strict=True):
        if proc.returncode:
            raise RuntimeError(f"a relay process exited {proc.returncode}: {output[-2000:]}")
    return seconds, outputs


@dataclass
class OrderCheck:
    messages: int = 0  # read back from the topic
    distinct: int = 0  # distinct event ids among them
    keys: int = 0
    keys_out_of_order: int = 0

    @property
    def kept(self) -> bool:
        return self.keys_out_of_order == 0


def order_check(*, topic: str, expected: int, timeout: float = 120.0) -> OrderCheck:
    """Read the topic from its beginning until `expected` distinct events came (or `timeout`), and count
    the keys whose events arrived out of write order (a key's outbox ids must rise in offset order)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT event_id::text, id FROM outbox_outboxevent WHERE topic = %s", [topic])
        row_id = dict(cursor.fetchall())
    consumer = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, group_id=None, max_partition_fetch_bytes=8 * 2**20
    )
    check = OrderCheck()
    last: dict[bytes, int] = {}
    seen: set[str] = set()
    broken: set[bytes] = set()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while len(seen) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200, max_records=10_000).values():
                for record in records:  # one partition's records, in offset order
                    check.messages += 1
                    event_id = next(value for name, value in record.headers if name == "event_id").decode()
                    seen.add(event_id)
                    this = row_id[event_id]
                    if this < last.get(record.key, 0):
                        broken.add(record.key)
                    last[record.key] = this
    finally:
        consumer.close()
    check.distinct, check.keys, check.keys_out_of_order = len(seen), len(last), len(broken)
    return check


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) > 1 else values[0]


class ClaimTimer:
    """A Django execute wrapper noting each claim statement's time in ms (outbox/claim.py: the only
    statements that take row locks with SKIP LOCKED)."""

    def __init__(self, into: list[float]) -> None:
        self.into = into

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "SKIP LOCKED" not in sql:
            return execute(sql, params, many, context)
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.into.append((time.perf_counter() - began) * 1000)
