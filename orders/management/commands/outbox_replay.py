"""manage.py outbox_replay: send order events again, through the outbox relay.

    manage.py outbox_replay --order-id ID [--order-id ID ...]
    manage.py outbox_replay --user-id USER --since 2026-11-01T00:00Z --until 2026-11-02T00:00Z
    manage.py outbox_replay --event-type order.shipped --since 2026-11-01 --dry-run
    manage.py outbox_replay --all --rate 500

Events still in the outbox keep their event ids; older ones are rebuilt from the
order history (header `replayed: true`, deterministic ids). See orders/replay.py
and docs/events.md ("Replay"). It lives in the orders app because only orders
knows which events an order had; it writes through outbox.services.
"""

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.replay import ORDER_EVENT_TYPES, ReplayFilter, ReplayItem, orders_replay
from orders_project.command_args import moment


class Command(BaseCommand):
    help = "Send order events again through the outbox relay (kept event ids; rebuilt when cleaned up)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--order-id", action="append", type=uuid.UUID, default=[], help="repeatable")
        parser.add_argument("--user-id", help="every order of this customer")
        parser.add_argument("--event-type", action="append", choices=ORDER_EVENT_TYPES, default=[], help="repeatable")
        parser.add_argument("--since", type=moment, help="changes at or after (ISO 8601; UTC unless a zone is given)")
        parser.add_argument("--until", type=moment, help="changes before")
        parser.add_argument("--all", action="store_true", help="needed to replay with no other filter")
        parser.add_argument("--dry-run", action="store_true", help="print what would be sent; queue nothing")
        parser.add_argument("--rate", type=float, help="events queued per second at most (default: as fast as it can)")
        parser.add_argument("--progress-seconds", type=float, default=5.0, help="seconds between progress lines")

    def handle(self, *args: Any, **options: Any) -> None:
        replay_filter = ReplayFilter(
            order_ids=options["order_id"],
            user_id=options["user_id"],
            event_types=options["event_type"],
            since=options["since"],
            until=options["until"],
        )
        if replay_filter == ReplayFilter() and not options["all"]:
            raise CommandError("name what to replay (--order-id, --user-id, --event-type, --since/--until) or --all")
        if options["rate"] is not None and options["rate"] <= 0:
            raise CommandError("--rate must be positive")

        def show(item: ReplayItem) -> None:
            self.stdout.write(item.describe())

        result = orders_replay(
            replay_filter=replay_filter,
            dry_run=options["dry_run"],
            rate=options["rate"],
            report=self.stdout.write,
            show=show if options["dry_run"] else None,
            progress_seconds=options["progress_seconds"],
        )
        if result.skipped:
            self.stdout.write(f"{result.skipped} changed while replaying (sent meanwhile or cleaned up): not queued")
        if result.counts.get("dead"):
            self.stdout.write(f"{result.counts['dead']} dead in the outbox: requeue or discard them in the admin")
