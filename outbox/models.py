"""The transactional outbox: events written with the change that caused them."""

import uuid

from django.db import models
from django.db.models import Q


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PUBLISHED = "published", "Published"
    DEAD = "dead", "Dead"


class OutboxEvent(models.Model):
    # BigAutoField id gives the write order that per-key ordering relies on.
    id = models.BigAutoField(primary_key=True)
    # Indexed, not UNIQUE in the database: the table is partitioned by day of created_at
    # (outbox/partitions.py) and a unique index there must hold created_at too (outbox/upgrade.py).
    event_id = models.UUIDField(db_index=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=100)
    topic = models.CharField(max_length=249)
    key = models.CharField(max_length=255)
    payload = models.JSONField()
    headers = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    # When the relay last recorded a failure of this row (the database's clock): a dead row's
    # "dead since", and where the automatic resubmission's cool-down counts from.
    failed_at = models.DateTimeField(null=True, blank=True)
    # Times the automatic resubmission set this dead row back to pending (outbox/resubmission.py).
    # No CHECK (>= 0): adding one would scan every partition under an exclusive lock. A database
    # default, so rows that a release without this field inserts during a deploy still get 0.
    resubmissions = models.IntegerField(default=0, db_default=0)
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    # The relay's lease on a key's head row while it sends that key (outbox/relay.py):
    # set in a short transaction, cleared when the outcome is recorded, and simply
    # ignored once claimed_until has passed (the relay died: another takes over).
    claimed_by = models.UUIDField(null=True, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Where Kafka put the row (its acknowledgement: partition and offset in `topic`), written
    # by the relay's outcome UPDATE with the status; NULL while unpublished and for rows
    # published before these columns existed. The delivery auditor reads back from here.
    kafka_partition = models.IntegerField(null=True, blank=True, editable=False)
    kafka_offset = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            # "Oldest due pending rows": a partial index holds only pending rows, so
            # it stays small however many published rows wait for cleanup.
            models.Index(
                fields=["next_attempt_at", "id"], name="outbox_pending_due_idx", condition=Q(status="pending")
            ),
            models.Index(fields=["key", "id"], name="outbox_key_idx", condition=~Q(status="published")),
            models.Index(fields=["status", "topic"], name="outbox_status_topic_idx"),
            # The relay finds and gives back its leases by claimed_by: only leased heads
            # are in this index, a handful of rows however large the table.
            models.Index(fields=["claimed_by"], name="outbox_claimed_by_idx", condition=Q(claimed_by__isnull=False)),
            # "Rows published since t" (the operations page's events-relayed chart) and the
            # cleanup's "published before the retention cutoff": a range on this index
            # instead of a pass over every published row.
            models.Index(fields=["published_at"], name="outbox_published_at_idx", condition=Q(status="published")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OutboxStatus.values), name="outbox_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.status})"

    @property
    def delivery(self) -> str:
        """Where Kafka put the row, "order.created [2] @ 18,443"; "unknown" for a row published
        before coordinates were recorded; "-" while it is not published."""
        return delivery_text(self.status, self.topic, self.kafka_partition, self.kafka_offset)


def delivery_text(status: str, topic: str, partition: int | None, offset: int | None) -> str:
    if status != OutboxStatus.PUBLISHED:
        return "-"
    if partition is None or offset is None:
        return "unknown"
    return f"{topic} [{partition}] @ {offset:,}"
