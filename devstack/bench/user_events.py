"""python -m devstack.bench user-events [--count N]: user events per second into Redis.

Produces N generated user events to a fresh set of user topics, then runs one
UserEventConsumer (the code behind consume_user_events) in a new consumer group
until it has handled all N, and prints the rate: handled messages over the
time from the first handled message to the last, so the group join (half the
session timeout on Tansu) does not count, and the CPU per event of this process
over that time (the consumer thread, kafka-python's, and the bench's 2 ms wait
for the count).

By default the broker is a fresh Tansu started for this run (memory storage
slows down as data piles up, so a shared broker gives numbers that depend on
its history; see PITFALLS). --bootstrap-servers uses a running broker
instead, still with fresh topics. The Redis keys the run writes (its users and
its processed-event markers, listed from the messages it generated) are deleted
afterwards, also after a failure; the topics stay, and their names are printed
(`topics a,b,c`) so a baseline can read the same messages. Deletes cancel the orders of the generated
users, who have none.
"""

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.test import override_settings
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from devstack import kafka
from devstack.bench import BenchError, bench_parser
from devstack.procs import free_port
from orders_project.kafka import client_config, producer_new
from users_cache.consumer import UserEventConsumer
from users_cache.generator import GeneratedMessage, GeneratorShares, user_events_generate
from users_cache.store import redis_client

_USER_EVENT_TYPES = ("user.created", "user.updated", "user.deleted")
# Short, so the group's first join on Tansu takes ~3 s rather than ~5 s.
_SESSION_TIMEOUT_MS = 6000
_CLEANUP_CHUNK = 1000


def _parser() -> argparse.ArgumentParser:
    parser = bench_parser("user-events", __doc__)
    parser.add_argument("--count", type=int, default=5000, help="Events to produce and consume (default 5000).")
    parser.add_argument("--updates", type=float, default=0.3, help="Share of updates (default 0.3).")
    parser.add_argument("--deletes", type=float, default=0.05, help="Share of deletes (default 0.05).")
    parser.add_argument("--duplicates", type=float, default=0.0, help="Share of exact resends.")
    parser.add_argument("--partitions", type=int, default=3, help="Partitions per user topic (default 3).")
    parser.add_argument("--max-poll-records", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=300, help="Give up after this many seconds.")
    parser.add_argument("--bootstrap-servers", default=None, help="Use this broker instead of starting a fresh Tansu.")
    return parser


def main(argv: list[str]) -> None:
    UserEventsBench().run(vars(_parser().parse_args(argv)))


def _say(line: str) -> None:
    print(line, flush=True)


def _note(line: str) -> None:
    """Progress, on stderr: stdout holds only the figures (run.py reads them)."""
    print(line, file=sys.stderr, flush=True)


class UserEventsBench:
    def run(self, options: dict[str, Any]) -> None:
        count = options["count"]
        if count < 1 or options["partitions"] < 1:
            raise BenchError("--count and --partitions must be at least 1.")
        shares = GeneratorShares(
            updates=options["updates"], deletes=options["deletes"], duplicates=options["duplicates"]
        )
        messages = list(user_events_generate(count=count, shares=shares, seed=random.randrange(2**32)))
        with ExitStack() as stack:
            bootstrap = options["bootstrap_servers"] or self._fresh_broker(stack)
            suffix = uuid.uuid4().hex[:8]
            topics = {event_type: f"bench.{event_type}.{suffix}" for event_type in _USER_EVENT_TYPES}
            stack.enter_context(
                override_settings(
                    KAFKA_BOOTSTRAP_SERVERS=[part.strip() for part in bootstrap.split(",")],
                    KAFKA_TOPICS={**settings.KAFKA_TOPICS, **topics},
                )
            )
            stack.callback(self._redis_clean, messages)
            self._topics_create(list(topics.values()), options["partitions"])
            produce_rate = self._produce(messages, topics)
            handled, seconds, cpu, counts = self._consume(count, options["max_poll_records"], options["timeout"])
        rate = handled / seconds if seconds > 0 else float("inf")
        _say(
            f"{rate:.0f} events/s into Redis, CPU {cpu / max(handled, 1) * 1e6:.0f} us/event: "
            f"{handled} handled in {seconds:.2f}s after the first "
            f"({count} events, {options['partitions']} partitions per topic, outcomes {counts}; "
            f"produced at {produce_rate:.0f}/s; broker {'given' if options['bootstrap_servers'] else 'fresh Tansu'})"
        )
        # For a baseline reading the same messages (devstack/bench/bare.py consume).
        _say("topics " + ",".join(topics[event_type] for event_type in _USER_EVENT_TYPES))

    def _fresh_broker(self, stack: ExitStack) -> str:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-user-events-")))
        server = kafka.start(free_port(), log_path=folder / "tansu.log")
        stack.callback(server.stop)
        return server.address

    def _topics_create(self, names: list[str], partitions: int) -> None:
        admin = KafkaAdminClient(**client_config(), client_id="bench-user-events")
        try:
            admin.create_topics([NewTopic(name, partitions, 1) for name in names])
        finally:
            admin.close()

    def _produce(self, messages: list[GeneratedMessage], topics: dict[str, str]) -> float:
        producer = producer_new()
        started = time.monotonic()
        try:
            for message in messages:
                producer.send(topics[message.event_type], key=message.key, value=message.value)
            producer.flush(timeout=120)
        finally:
            producer.close(timeout=5)
        seconds = time.monotonic() - started
        _note(f"Produced {len(messages)} events in {seconds:.2f}s")
        return len(messages) / seconds

    def _consume(self, count: int, max_poll_records: int, timeout: float) -> tuple[int, float, float, dict[str, int]]:
        """(events handled after the first, their seconds, this process's CPU seconds meanwhile, outcomes)."""
        consumer = UserEventConsumer(
            group_id=f"bench-user-events-{uuid.uuid4().hex[:8]}",
            session_timeout_ms=_SESSION_TIMEOUT_MS,
            max_poll_records=max_poll_records,
        )
        failure: list[BaseException] = []

        def run() -> None:
            try:
                consumer.run()
            except BaseException as exc:
                failure.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, name="bench-user-events", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        first_at = first_total = None
        first_cpu = 0.0
        try:
            # Polling the counters, not synchronising: 2 ms is far below a batch's time.
            while consumer.stats.total < count:
                if failure:
                    raise BenchError(f"The consumer failed: {failure[0]!r}")
                if time.monotonic() > deadline:
                    raise BenchError(f"Only {consumer.stats.total} of {count} events handled in {timeout:.0f}s.")
                if first_at is None and consumer.stats.total:
                    first_at, first_total, first_cpu = time.monotonic(), consumer.stats.total, time.process_time()
                time.sleep(0.002)
            done_at, done_cpu = time.monotonic(), time.process_time()
        finally:
            consumer.stop.set()
            thread.join(30)
        if first_at is None or first_total is None:
            raise BenchError(
                f"All {count} events were handled between two looks at the count (2 ms apart): too few to time;"
                " give more --count or a smaller --max-poll-records."
            )
        handled = consumer.stats.total - first_total
        return handled, done_at - first_at, done_cpu - first_cpu, dict(consumer.stats.counts)

    def _redis_clean(self, messages: list[GeneratedMessage]) -> None:
        """Delete the users and event markers this run wrote, and nothing else."""
        keys: set[str] = set()
        for message in messages:
            keys.add(f"users:user:{message.key.decode()}")
            try:
                body = json.loads(message.value)
            except ValueError:
                continue
            if isinstance(body, dict) and isinstance(body.get("event_id"), str):
                keys.add(f"users:event:{body['event_id']}")
        client = redis_client()
        ordered = sorted(keys)
        deleted = 0
        for start in range(0, len(ordered), _CLEANUP_CHUNK):
            deleted += client.delete(*ordered[start : start + _CLEANUP_CHUNK])
        _note(f"Deleted {deleted} Redis keys written by the run.")
