"""Delete published rows past their retention, a bounded batch per statement.

Each DELETE takes at most OUTBOX_CLEANUP_BATCH_SIZE rows, picked by primary
key, so no statement locks many rows or runs long; dead rows are never
deleted here (staff decide about them).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from outbox.models import OutboxEvent, OutboxStatus

logger = logging.getLogger(__name__)


def cleanup_published(*, batch_size: int | None = None, max_batches: int = 1000) -> int:
    batch_size = batch_size or settings.OUTBOX_CLEANUP_BATCH_SIZE
    cutoff = timezone.now() - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    deleted_total = 0
    for _ in range(max_batches):
        ids = list(
            OutboxEvent.objects.filter(status=OutboxStatus.PUBLISHED, published_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        deleted, _ = OutboxEvent.objects.filter(id__in=ids, status=OutboxStatus.PUBLISHED).delete()
        deleted_total += deleted
    if deleted_total:
        logger.info("Outbox cleanup deleted %d published rows older than %s", deleted_total, cutoff.isoformat())
    return deleted_total
