"""The outbox table becomes range-partitioned by day of created_at (outbox/upgrade.py).

Online on a live table: the long steps (a CHECK's VALIDATE, two index builds) block no
writes, and the switch is one short transaction of catalog changes under lock_timeout,
retried. `manage.py outbox_partition_upgrade` runs the same steps ahead of a deploy;
this migration then finds the table partitioned and does nothing.

Django's state keeps one model with `id` as its primary key; in the database the key is
(id, created_at), as PostgreSQL requires the partition key in every unique constraint,
and event_id has a plain index instead of a UNIQUE constraint (why: outbox/upgrade.py).
"""

import uuid

from django.conf import settings
from django.db import migrations, models

from outbox.upgrade import partition_upgrade


def _upgrade(apps, schema_editor):
    partition_upgrade(ahead_days=settings.OUTBOX_PARTITIONS_AHEAD_DAYS)


def _refuse(apps, schema_editor):
    raise RuntimeError("The partitioned outbox cannot be turned back into one table by a migration.")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY and the retried lock steps need their own transactions.
    atomic = False

    dependencies = [
        ("outbox", "0004_claimed_by_index"),
        # That migration adds an index to the outbox table: the partitioned table copies every
        # index of the old one, so it must exist first (it cannot be built CONCURRENTLY after).
        ("orders", "0005_outbox_order_id_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(_upgrade, _refuse)],
            state_operations=[
                migrations.AlterField(
                    model_name="outboxevent",
                    name="event_id",
                    field=models.UUIDField(db_index=True, default=uuid.uuid4, editable=False),
                ),
            ],
        ),
    ]
