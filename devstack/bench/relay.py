"""python -m devstack.bench relay [--events N] [--keys K] [--relays 1,3] [--samples S] [--no-vacuum] [--bootstrap H:P].

Relay throughput, each phase on a fresh Tansu broker with the same N events over K keys
(interleaved; devstack.bench.relay_parts.outbox_fill):
* the bare producer baseline: producer_new() sending the bytes the relay would send,
  fire-and-forget, then in batches of --batch-size that wait for their acknowledgements;
* 1 and then 3 relays as separate processes (`--drain`: relay_run in a loop until no row is
  pending), released together; events/s = N / time until every row is published. Then
  the topic is read back: each key's events must have arrived in write order. Each
  process reports its peak RSS (it must not grow with N) and each claim statement's time.
  The events are vacuumed and analyzed before the clock starts (--no-vacuum: not, as right
  after a burst of writes).
Delivery delay (skipped with --samples 0): S single events, written one at a time; a relay
thread waiting for the on-commit kick (an in-process stand-in for the Celery kick: the
queue hop to a worker is not measured) runs right after each commit, and a consumer notes
when the event arrives; p50/p95 of commit -> receipt.

Each phase gets a fresh Tansu broker (its memory storage slows down as data piles up, so
phases on one broker would not compare) unless --bootstrap names a broker. Events go to a
topic of the run's own; the rows it wrote are deleted afterwards, also after a failure.
The relay takes *every* due outbox row, so the bench refuses to run while rows it did
not write are pending; stop any Celery worker of this database first, or it will race the
relays measured.
"""

import argparse
import json
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.test import override_settings
from kafka import KafkaConsumer, TopicPartition

from devstack import kafka as devstack_kafka
from devstack.bench import BenchError, bench_parser
from devstack.bench.relay_parts import (
    ClaimTimer,
    bare_produce,
    messages_load,
    order_check,
    outbox_fill,
    p95,
    relays_run,
)
from devstack.procs import free_port
from orders_project.kafka import producer_new, topics_create
from outbox import services
from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_run
from outbox.services import event_enqueue

_DEADLINE_SECONDS = 600.0


def _say(line: str) -> None:
    """One line of the bench's output, at once (run.py and the relay processes' parent read it)."""
    print(line, flush=True)


def _rss_mb() -> float:
    """This process's peak resident set: VmHWM, which starts afresh at exec (ru_maxrss keeps the
    forking parent's peak across exec, so a relay started by a big parent would report its size)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _parser() -> argparse.ArgumentParser:
    parser = bench_parser("relay", __doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--relays", default="1,3", help="relay process counts, comma-separated")
    parser.add_argument("--samples", type=int, default=200, help="single events for the delivery delay")
    parser.add_argument("--batch-size", type=int, default=settings.OUTBOX_BATCH_SIZE)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--bootstrap", default="", help="use this broker instead of fresh Tansu brokers")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare producer baseline")
    parser.add_argument(
        "--no-vacuum", action="store_true", help="relay right after writing the events, no VACUUM ANALYZE first"
    )
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the relay processes (a deployment's)")
    parser.add_argument("--drain", metavar="TOPIC", default="", help="internal: be one relay process")
    return parser


def main(argv: list[str]) -> None:
    RelayBench(vars(_parser().parse_args(argv))).run()


class RelayBench:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.figures: dict[str, Any] = {
            "events": options["events"],
            "keys": options["keys"],
            "batch_size": options["batch_size"],
            "relays": {},
        }

    def run(self) -> None:
        options = self.options
        if options["drain"]:
            self._drain(options["drain"])
            return
        topic = f"bench-relay-{uuid.uuid4().hex[:8]}"
        others = OutboxEvent.objects.filter(status=OutboxStatus.PENDING).count()
        if others:
            raise BenchError(f"The outbox has {others} pending rows this bench did not write; drain them first.")
        # Every event type goes to the run's topic; kicks are off: the bench runs the relays itself.
        with _kicks_off(), override_settings(KAFKA_TOPICS=dict.fromkeys(settings.KAFKA_TOPICS, topic)):
            try:
                self._throughput(topic)
                if options["samples"]:
                    with self._broker(topic):
                        delays = self._delays(topic)
                    p50, p95 = statistics.median(delays), statistics.quantiles(delays, n=20)[18]
                    _say(
                        f"delivery delay, commit -> consumer ({len(delays)} single events): "
                        f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
                    )
                    self.figures |= {"delay_p50_ms": round(p50 * 1000, 1), "delay_p95_ms": round(p95 * 1000, 1)}
                _say(f"figures: {json.dumps(self.figures)}")  # for devstack/bench/run.py
            finally:
                deleted, _ = OutboxEvent.objects.filter(topic=topic).delete()
                _say(f"deleted {deleted} outbox rows of {topic}")
                connections.close_all()

    @contextmanager
    def _broker(self, topic: str) -> Iterator[None]:
        """A fresh Tansu (or the given broker) with the run's topic created."""
        server = None
        if self.options["bootstrap"]:
            address = self.options["bootstrap"]
        else:
            server = devstack_kafka.start(free_port())
            address = server.address
        try:
            with override_settings(KAFKA_BOOTSTRAP_SERVERS=[address]):
                topics_create(partitions=self.options["partitions"], replication_factor=1)
                yield
        finally:
            if server is not None:
                server.stop()

    def _throughput(self, topic: str) -> None:
        """The bare producer, then each relay count, over the same freshly written events."""
        events, keys, batch = self.options["events"], self.options["keys"], self.options["batch_size"]
        vacuum = not self.options["no_vacuum"]
        outbox_fill(topic=topic, events=events, keys=keys, vacuum=vacuum)
        if not self.options["no_bare"]:
            messages = messages_load(topic=topic)
            for name, label, size in (
                ("bare_fire_and_forget", "fire-and-forget", None),
                ("bare_batches", f"batches of {batch} waiting for acks", batch),
            ):
                with self._broker(topic):
                    seconds, cpu = bare_produce(messages, topic=topic, batch=size)
                self.figures[name] = {"rate": round(events / seconds), "cpu_us_per_event": round(cpu / events * 1e6)}
                _say(
                    f"bare producer, {label}: {events} events in {seconds:.2f} s = {events / seconds:.0f} events/s; "
                    f"CPU {cpu / events * 1e6:.0f} us/event"
                )
            del messages
        for n, relays in enumerate(int(each) for each in self.options["relays"].split(",")):
            if n:  # the same rows again, written afresh
                OutboxEvent.objects.filter(topic=topic).delete()
                outbox_fill(topic=topic, events=events, keys=keys, vacuum=vacuum)
            with self._broker(topic):
                run = relays_run(
                    relays,
                    topic=topic,
                    batch_size=batch,
                    log_level=self.options["log_level"],
                    timeout=_DEADLINE_SECONDS,
                )
                check = order_check(topic=topic, expected=events)
            if check.distinct != events or sum(run.published) != events:
                raise BenchError(f"{relays} relay(s): {sum(run.published)} published, {check.distinct} read back")
            order = "kept" if check.kept else f"BROKEN for {check.keys_out_of_order} of {check.keys} keys"
            self.figures["relays"][str(relays)] = {
                "rate": round(events / run.seconds),
                "order_kept": check.kept,
                "cpu_us_per_event": round(sum(run.cpu_seconds) / events * 1e6),
                "idle_polls": sum(run.idle_polls),
                "peak_rss_mb": max(run.peak_rss_mb),
                "first_rss_mb": max(run.first_rss_mb),
                "claims": len(run.claim_ms),
                "claim_ms_p50": round(statistics.median(run.claim_ms), 2) if run.claim_ms else None,
                "claim_ms_p95": round(p95(run.claim_ms), 2) if run.claim_ms else None,
            }
            _say(
                f"{relays} relay process(es): {events} events in {run.seconds:.2f} s = {events / run.seconds:.0f} "
                f"events/s; per-key order {order} ({check.messages} messages, {check.keys} keys); "
                f"CPU {sum(run.cpu_seconds) / events * 1e6:.0f} us/event, {sum(run.idle_polls)} idle polls; "
                f"peak RSS {max(run.peak_rss_mb):.1f} MB (after the first run {max(run.first_rss_mb):.1f} MB)"
            )

    def _drain(self, topic: str) -> None:
        """One relay process of the throughput phase: ready, wait for "go", relay until nothing is pending."""
        producer = producer_new()
        try:
            producer.partitions_for(topic)
            OutboxEvent.objects.exists()  # the database connection, opened before the clock starts
            _say("ready")
            if sys.stdin.readline().strip() != "go":
                return
            deadline = time.monotonic() + _DEADLINE_SECONDS
            published, first_rss, idle = 0, 0.0, 0
            claims: list[float] = []
            cpu_started = time.process_time()
            while OutboxEvent.objects.filter(status=OutboxStatus.PENDING).exists():
                if time.monotonic() > deadline:
                    raise BenchError("the relays did not drain the outbox in time")
                with connection.execute_wrapper(ClaimTimer(claims)):
                    result = relay_run(producer=producer, batch_size=self.options["batch_size"])
                published += result.published
                first_rss = first_rss or _rss_mb()
                if not result.batches:
                    idle += 1
                    time.sleep(0.005)  # the other relays hold every due key
            figures = {
                "published": published,
                "cpu_seconds": round(time.process_time() - cpu_started, 2),
                "idle_polls": idle,
                "peak_rss_mb": round(_rss_mb(), 1),
                "first_rss_mb": round(first_rss, 1),
                "claim_ms": [round(ms, 3) for ms in claims],
            }
            _say(json.dumps(figures))
        finally:
            producer.close(timeout=5)
            connections.close_all()

    def _delays(self, topic: str) -> list[float]:
        """Commit -> receipt, in seconds, for single events relayed on a kick right after their commit."""
        received: dict[str, float] = {}
        arrived = threading.Condition()
        kick, stop = threading.Event(), threading.Event()

        def consume() -> None:
            consumer = KafkaConsumer(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, group_id=None, fetch_max_wait_ms=5
            )
            partitions = [TopicPartition(topic, p) for p in range(self.options["partitions"])]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            try:
                while not stop.is_set():
                    for records in consumer.poll(timeout_ms=50).values():
                        with arrived:
                            for record in records:
                                received[dict(record.headers)["event_id"].decode()] = time.monotonic()
                            arrived.notify_all()
            finally:
                consumer.close()

        def relay() -> None:
            producer = producer_new()
            try:
                while not stop.is_set():
                    if kick.wait(0.1):
                        kick.clear()
                        relay_run(producer=producer)
            finally:
                producer.close(timeout=5)
                connections.close_all()

        workers = [threading.Thread(target=consume), threading.Thread(target=relay)]
        for worker in workers:
            worker.start()
        delays: list[float] = []
        commits: list[float] = []

        def after_commit() -> None:
            commits.append(time.monotonic())
            kick.set()

        try:
            for n in range(self.options["samples"]):
                with transaction.atomic():
                    event = event_enqueue(event_type="order.created", key=f"bench-user-{n}", data={"seq": n})
                    # Runs right after COMMIT (first callback): the commit time, then the kick.
                    transaction.on_commit(after_commit)
                committed = commits[-1]
                event_id = str(event.event_id)
                with arrived:
                    if not arrived.wait_for(lambda: event_id in received, timeout=30):  # noqa: B023  # called at once
                        raise BenchError(f"event {event_id} did not arrive within 30 s")
                delays.append(received[event_id] - committed)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
        return delays


@contextmanager
def _kicks_off() -> Iterator[None]:
    """No Celery kick on commit while benchmarking: a worker picking our rows up would skew the figures."""
    original = services.relay_kick
    services.relay_kick = lambda: None
    try:
        yield
    finally:
        services.relay_kick = original
