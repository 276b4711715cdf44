"""manage.py consume_user_events: keep the Redis replica of users up to date from Kafka."""

import datetime as dt
import signal
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders_project.metrics import metrics_serve
from orders_project.tracing import tracing_flush, tracing_setup
from users_cache.consumer import PROGRESS_INTERVAL_SECONDS, UserEventConsumer


class Command(BaseCommand):
    help = (
        "Consume user.created/updated/deleted into Redis (and cancel deleted users' open orders). "
        "SIGTERM or Ctrl-C finishes the current batch, commits and exits 0. "
        "--rebuild reads the three (compacted) user topics from the beginning in a new group "
        "'<group>-rebuild-<UTC time>' (printed), applying events again even if already processed, "
        "and prints progress; with --until-caught-up it exits 0 once it has read everything "
        "published before it started (for a Job after Redis was lost), otherwise it carries on "
        "as a normal consumer in that new group."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--group-id", default=None, help="Consumer group (default KAFKA_CONSUMER_GROUP_ID).")
        parser.add_argument("--session-timeout-ms", type=int, default=10_000)
        parser.add_argument("--rebuild", action="store_true", help="Read the user topics from the beginning.")
        parser.add_argument("--until-caught-up", action="store_true", help="With --rebuild: exit once caught up.")
        parser.add_argument(
            "--progress-seconds",
            type=float,
            default=PROGRESS_INTERVAL_SECONDS,
            help=f"Seconds between progress lines (default {PROGRESS_INTERVAL_SECONDS:.0f}).",
        )

    def handle(
        self,
        *args: Any,
        group_id: str | None,
        session_timeout_ms: int,
        rebuild: bool,
        until_caught_up: bool,
        progress_seconds: float,
        **options: Any,
    ) -> None:
        if until_caught_up and not rebuild:
            raise CommandError("--until-caught-up needs --rebuild.")
        if rebuild:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            group_id = f"{group_id or settings.KAFKA_CONSUMER_GROUP_ID}-rebuild-{stamp}"
            self.stdout.write(f"rebuild: reading the user topics from the beginning as group {group_id}")
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            self.stderr.write(f"Signal {signum}: finishing the current batch, then exiting.")
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        # Spans of this process go to OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
        tracing_setup("consumer")
        if not until_caught_up:  # a one-off rebuild Job reports its progress on stdout instead
            try:
                metrics_serve("consumer")
            except ImproperlyConfigured as exc:  # METRICS_PORT taken or malformed
                raise CommandError(str(exc)) from None
        stats = UserEventConsumer(
            group_id=group_id,
            stop=stop,
            session_timeout_ms=session_timeout_ms,
            rebuild=rebuild,
            until_caught_up=until_caught_up,
            progress_seconds=progress_seconds,
            report=self.stdout.write,
        ).run()
        tracing_flush()
        self.stdout.write(f"Stopped after {stats.total} messages: {stats.counts}")
