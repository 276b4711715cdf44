from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # CONCURRENTLY: the outbox takes writes all the time; a plain CREATE INDEX would block them.
    atomic = False

    dependencies = [
        ("outbox", "0002_relay_lease"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(("status", "published")), fields=["published_at"], name="outbox_published_at_idx"
            ),
        ),
    ]
