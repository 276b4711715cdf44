"""Two columns for dead rows: when the relay last recorded a failure (`failed_at`) and how
often the automatic resubmission set the row back to pending (`resubmissions`).

Both are catalog-only changes on the partitioned table (a nullable column, and one with a
constant default: PostgreSQL 11+ stores the default instead of rewriting the partitions);
no CHECK, which would scan every partition. Dead rows written before it get their
`failed_at` from `next_attempt_at`, which the relay set a backoff (at most
OUTBOX_BACKOFF_MAX_SECONDS) after their last failure: their "dead since" is that much late.
"""

from django.db import migrations, models

_BACKFILL = "UPDATE outbox_outboxevent SET failed_at = next_attempt_at WHERE status = 'dead' AND failed_at IS NULL"


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0006_delivery_coordinates"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="failed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="outboxevent",
            name="resubmissions",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.RunSQL(_BACKFILL, migrations.RunSQL.noop),
    ]
