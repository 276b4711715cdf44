"""An index on the outbox table that belongs to orders: "the events of this order".

Order events carry the order's id in `payload.data.order_id` (the event contract);
the outbox knows nothing of that, so the index that serves orders' lookup ships
with orders (orders.selectors.order_events, the admin's order page, orders.replay).
The expression is the one Django writes for `payload__data__order_id=...`, so the
planner matches it. CONCURRENTLY: the outbox takes writes all the time.
"""

from django.db import migrations

INDEX = "outbox_payload_order_id_idx"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0004_cancel_order_permission"),
        ("outbox", "0003_published_at_index"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} "
            "ON outbox_outboxevent ((payload #> '{data,order_id}'), id)",
            f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
        ),
    ]
