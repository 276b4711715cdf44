"""manage.py consume_user_events: keep the Redis copy of users up to date from Kafka."""

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from users_cache.consumer import UserEventConsumer


class Command(BaseCommand):
    help = (
        "Consume user.created/updated/deleted into Redis (and cancel deleted users' open orders). "
        "SIGTERM or Ctrl-C finishes the current batch, commits and exits 0."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--group-id", default=None, help="Consumer group (default KAFKA_CONSUMER_GROUP_ID).")
        parser.add_argument("--session-timeout-ms", type=int, default=10_000)

    def handle(self, *args: Any, group_id: str | None, session_timeout_ms: int, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            self.stderr.write(f"Signal {signum}: finishing the current batch, then exiting.")
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        stats = UserEventConsumer(group_id=group_id, stop=stop, session_timeout_ms=session_timeout_ms).run()
        self.stdout.write(f"Stopped after {stats.total} messages: {stats.counts}")
