"""manage.py produce_user_events: send generated user events to Kafka (local use, benchmarks, tests)."""

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kafka.errors import KafkaError

from orders_project.kafka import producer_new
from users_cache.generator import GeneratorShares, user_events_generate

PROGRESS_EVERY = 1000


class Command(BaseCommand):
    help = (
        "Produce realistic user.created/updated/deleted events, optionally with duplicates, "
        "out-of-order and malformed messages."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=100, help="Messages to send (default 100).")
        parser.add_argument("--rate", type=float, default=0, help="Messages per second; 0 = as fast as possible.")
        parser.add_argument("--updates", type=float, default=0.3, help="Share of updates (default 0.3).")
        parser.add_argument("--deletes", type=float, default=0.05, help="Share of deletes (default 0.05).")
        parser.add_argument("--duplicates", type=float, default=0.0, help="Share of exact resends.")
        parser.add_argument("--out-of-order", type=float, default=0.0, help="Share of updates dated in the past.")
        parser.add_argument("--malformed", type=float, default=0.0, help="Share of messages that break the contract.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a repeatable stream.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["count"] < 0 or options["rate"] < 0:
            raise CommandError("--count and --rate must not be negative.")
        shares = GeneratorShares(
            updates=options["updates"],
            deletes=options["deletes"],
            duplicates=options["duplicates"],
            out_of_order=options["out_of_order"],
            malformed=options["malformed"],
        )
        try:
            producer = producer_new()
        except KafkaError as exc:
            raise CommandError(f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} is not reachable: {exc!r}") from exc
        interval = 1 / options["rate"] if options["rate"] else 0.0
        started = time.monotonic()
        sent = 0
        try:
            for message in user_events_generate(count=options["count"], shares=shares, seed=options["seed"]):
                producer.send(settings.KAFKA_TOPICS[message.event_type], key=message.key, value=message.value)
                sent += 1
                if sent % PROGRESS_EVERY == 0:
                    self.stderr.write(f"{sent} sent")
                if interval:
                    # Pacing, not synchronisation: hold the requested rate.
                    time.sleep(max(started + sent * interval - time.monotonic(), 0))
            producer.flush(timeout=30)
        finally:
            producer.close(timeout=5)
        seconds = time.monotonic() - started
        self.stdout.write(f"Sent {sent} user events in {seconds:.2f}s ({sent / max(seconds, 1e-9):.0f}/s).")
