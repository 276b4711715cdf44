"""`manage.py outbox_partition_upgrade`: partition the outbox table online, ahead of the deploy.

The same steps as migration outbox 0005 (outbox/upgrade.py), for an operator who wants the
long part (a CHECK's VALIDATE and two index builds over the whole table: minutes on a big
table, blocking no writes) done at a quiet hour; `migrate` then finds the table partitioned.
Interrupted, it is run again: every step picks up where it stopped.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from outbox.partitions import PARENT
from outbox.upgrade import partition_upgrade


class Command(BaseCommand):
    help = "Turn the plain outbox table into the day-partitioned one without a long lock."

    def handle(self, *args: Any, **options: Any) -> None:
        if partition_upgrade(ahead_days=settings.OUTBOX_PARTITIONS_AHEAD_DAYS):
            self.stdout.write(f"{PARENT} is now partitioned by day of created_at")
        else:
            self.stdout.write(f"{PARENT} was already partitioned: nothing to do")
