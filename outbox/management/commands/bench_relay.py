"""manage.py bench_relay [--events N] [--keys K] [--samples S] [--bootstrap HOST:PORT]: relay figures.

Throughput: N events over K keys (interleaved) are written, then 1 and then 3
relays (threads, each with its own producer and database connection, started
together) drain them; events/s = N / time until every row is published.
Delivery delay: S single events, written one at a time; a relay thread waiting
for the on-commit kick (an in-process stand-in for the Celery kick: the queue
hop to a worker is not measured) runs right after each commit, and a consumer
notes when the event arrives; p50/p95 of commit -> receipt.

Each phase gets a fresh Tansu broker (its memory storage slows down as data
piles up, so phases on one broker would not compare) unless --bootstrap names
a broker. Events go to a topic of the run's own; the rows it wrote are deleted
afterwards, also after a failure. The relay takes *every* due outbox row, so the
command refuses to run while rows it did not write are pending; stop any
Celery worker of this database first, or it will race the relays measured.
"""

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, transaction
from django.test import override_settings
from kafka import KafkaConsumer, TopicPartition

from devstack import kafka as devstack_kafka
from devstack.procs import free_port
from orders_project.kafka import producer_new, topics_create
from orders_project.threads import run_in_threads
from outbox import services
from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_run
from outbox.services import EventSpec, event_enqueue, events_enqueue

_CHUNK = 500
_DEADLINE_SECONDS = 600.0


class Command(BaseCommand):
    help = "Measure relay throughput (1 and 3 relays) and commit-to-consumer delivery delay."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events", type=int, default=3000)
        parser.add_argument("--keys", type=int, default=50)
        parser.add_argument("--samples", type=int, default=200, help="single events for the delivery delay")
        parser.add_argument("--batch-size", type=int, default=settings.OUTBOX_BATCH_SIZE)
        parser.add_argument("--partitions", type=int, default=3)
        parser.add_argument("--bootstrap", default="", help="use this broker instead of fresh Tansu brokers")

    def handle(self, *args: Any, **options: Any) -> None:
        topic = f"bench-relay-{uuid.uuid4().hex[:8]}"
        others = OutboxEvent.objects.filter(status=OutboxStatus.PENDING).count()
        if others:
            raise CommandError(f"The outbox has {others} pending rows this command did not write; drain them first.")
        self.options = options
        # Every event type goes to the run's topic; kicks are off: the command runs the relays itself.
        with _kicks_off(), override_settings(KAFKA_TOPICS=dict.fromkeys(settings.KAFKA_TOPICS, topic)):
            try:
                for relays in (1, 3):
                    with self._broker(topic):
                        rate = self._throughput(relays)
                    self.stdout.write(f"{relays} relay(s): {options['events']} events in {rate:.0f} events/s")
                with self._broker(topic):
                    delays = self._delays(topic)
                p50, p95 = statistics.median(delays), statistics.quantiles(delays, n=20)[18]
                self.stdout.write(
                    f"delivery delay, commit -> consumer ({len(delays)} single events): "
                    f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
                )
            finally:
                deleted, _ = OutboxEvent.objects.filter(topic=topic).delete()
                self.stdout.write(f"deleted {deleted} outbox rows of {topic}")
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

    def _throughput(self, relays: int) -> float:
        """Write the events, then time `relays` relays draining them. Returns events/s."""
        events, keys = self.options["events"], self.options["keys"]
        for start in range(0, events, _CHUNK):
            specs = [
                EventSpec("order.created", f"bench-user-{n % keys}", {"seq": n}) for n in range(start, start + _CHUNK)
            ]
            with transaction.atomic():
                events_enqueue(events=specs[: events - start])
        try:
            _, elapsed = run_in_threads([self._relay] * relays)
        except Exception as exc:
            raise CommandError(f"a relay failed: {exc!r}") from exc
        OutboxEvent.objects.filter(topic=settings.KAFKA_TOPICS["order.created"]).delete()  # next phase starts empty
        return events / elapsed

    def _relay(self) -> None:
        producer = producer_new()
        try:
            deadline = time.monotonic() + _DEADLINE_SECONDS
            while OutboxEvent.objects.filter(status=OutboxStatus.PENDING).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the relays did not drain the outbox in time")
                if not relay_run(producer=producer, batch_size=self.options["batch_size"]).batches:
                    time.sleep(0.005)  # the other relays hold every due key
        finally:
            producer.close(timeout=5)

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
                        raise CommandError(f"event {event_id} did not arrive within 30 s")
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
