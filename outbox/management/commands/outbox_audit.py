"""manage.py outbox_audit: read published outbox rows back from Kafka at their recorded coordinates.

    manage.py outbox_audit                                        the last OUTBOX_AUDIT_WINDOW_MINUTES
    manage.py outbox_audit --since 2026-12-07T02:00Z --until 2026-12-07T03:00Z --topic order.created
    manage.py outbox_audit --since 2026-12-01 --sample 5000       5000 rows picked at random

Prints one line per finding (missing, misplaced, out of order; each names the row, its key and
its trace id) and a summary; exits with status 1 when something was found. Rows published
before coordinates were recorded are not audited. How each is judged: outbox/audit.py.
"""

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from kafka.errors import KafkaError

from orders_project.command_args import moment
from outbox.audit import AuditResult, window_audit


class Command(BaseCommand):
    help = "Check published outbox rows against Kafka: each at its recorded offset, in order, not lost."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=moment,
            help="rows published at or after (ISO 8601, UTC unless a zone is given; "
            "default: OUTBOX_AUDIT_WINDOW_MINUTES ago)",
        )
        parser.add_argument("--until", type=moment, help="rows published before (default: now)")
        parser.add_argument("--sample", type=int, help="audit this many rows of the window picked at random")
        parser.add_argument("--topic", help="only rows of this topic")
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds to read each batch back")
        parser.add_argument("--quiet", action="store_true", help="the summary line only")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        since = options["since"] or now - dt.timedelta(minutes=settings.OUTBOX_AUDIT_WINDOW_MINUTES)
        until = options["until"] or now
        if since >= until:
            raise CommandError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
        sample = options["sample"]
        if sample is not None and sample < 1:
            raise CommandError("--sample must be at least 1")
        topic = options["topic"]
        if topic is not None and topic not in settings.KAFKA_TOPICS.values():
            known = ", ".join(sorted(set(settings.KAFKA_TOPICS.values())))
            raise CommandError(f"unknown topic {topic!r}; the service's topics: {known}")
        if options["timeout"] <= 0:
            raise CommandError("--timeout must be positive")
        total = AuditResult()
        try:
            for result in window_audit(
                since=since,
                until=until,
                topic=topic,
                sample=sample,
                batch_size=settings.OUTBOX_AUDIT_BATCH_SIZE,
                timeout=options["timeout"],
            ):
                if not options["quiet"]:
                    for finding in result.findings:
                        self.stdout.write(finding.describe())
                total.add(result)
        except KafkaError as exc:
            raise CommandError(f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} is not reachable: {exc!r}") from exc
        self.stdout.write(total.line())
        if not total.clean:
            raise CommandError("deliveries do not match the outbox (findings above)", returncode=1)
