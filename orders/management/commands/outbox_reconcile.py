"""manage.py outbox_reconcile: after a database restore, answer the order events of orders that are gone.

    manage.py outbox_reconcile --since 2026-12-07T02:10:00Z                 report orphans
    manage.py outbox_reconcile --since 2026-12-07T02:10:00Z --publish       and void them

Reads the order topics from `--since` (the restore point) on, by record timestamp,
and reports every order named there that the database does not have; with
`--publish` writes one `order.voided` per such order through the outbox (the relay
sends it). Running it again voids nothing twice. See orders/reconcile.py and
docs/events.md ("After a database restore"). It lives in the orders app because
only orders knows which orders exist; it writes through outbox.services.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orders.reconcile import kafka_order_events_read, orphans_find, orphans_void
from orders_project.command_args import moment


class Command(BaseCommand):
    help = "After a database restore: report (and with --publish void) order events on Kafka whose order is gone."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=moment, required=True, help="the restore point (ISO 8601; UTC unless a zone is given)"
        )
        parser.add_argument("--until", type=moment, help="read events before this time only (default: up to now)")
        parser.add_argument("--publish", action="store_true", help="write order.voided for each orphan not voided yet")
        parser.add_argument("--quiet", action="store_true", help="the summary line only, not one line per orphan")
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds to read the topics to their end")

    def handle(self, *args: Any, **options: Any) -> None:
        events = kafka_order_events_read(since=options["since"], until=options["until"], timeout=options["timeout"])
        result = orphans_find(events)
        if not options["quiet"]:
            for orphan in result.orphans:
                self.stdout.write(orphan.describe())
        if options["publish"]:
            orphans_void(result=result)
        self.stdout.write(result.line())
