"""Where Kafka put each published row: its partition and offset (the topic is the row's own).

Nullable columns without a default: on the partitioned parent ADD COLUMN reaches every
partition as a catalog change (no rewrite, no scan), under a moment's ACCESS EXCLUSIVE
lock (bounded by the connection's lock_timeout, POSTGRES_LOCK_TIMEOUT_MS: a migration
waiting behind a long transaction fails instead of queueing the outbox's traffic). The
previous release's code neither reads nor writes them, so it runs on the migrated table.
Rows published before it keep NULL ("unknown" in the admin and replay output).
A database still on the plain table is partitioned by 0005 first, so this always finds
the parent; `manage.py outbox_partition_upgrade` run ahead of a deploy copies the columns
the table had then (LIKE), and this migration adds these to the partitioned table after.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0005_partition_by_day"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="kafka_partition",
            field=models.IntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="outboxevent",
            name="kafka_offset",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
    ]
