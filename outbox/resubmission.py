"""The automatic resubmission of dead rows (off unless OUTBOX_DEAD_RESUBMIT_MAX > 0).

A row dies when Kafka refuses it OUTBOX_MAX_RETRY_ATTEMPTS times (outbox/outcome.py). Some
refusals outlast that budget and then go away (an ACL or a topic fixed an hour later), so a
dead row is set back to pending OUTBOX_DEAD_RESUBMIT_AFTER_SECONDS after its last failure, at
most OUTBOX_DEAD_RESUBMIT_MAX times; then it stays dead for staff. It keeps its id, so it is
still its key's head and goes before the rows behind it (per-key order holds), and it keeps
its attempts: it gets one more send, and a refusal makes it dead again at once.

Several workers may run it at once (beat's task queued twice, a run outlasting the interval):
each batch is one UPDATE whose rows are chosen FOR UPDATE SKIP LOCKED and re-checked as
dead, so a row is resubmitted by one of them, once per cool-down.
"""

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from outbox import metrics
from outbox.claim import OUTBOX_TABLE
from outbox.kick import relay_kick
from outbox.models import OutboxStatus

logger = logging.getLogger(__name__)

# Rows per statement: one pass over the dead rows' index and an UPDATE of this many, a few
# milliseconds; a run takes at most MAX_BATCHES of them (beat runs it every minute).
BATCH_SIZE = 500
MAX_BATCHES = 10

_RESUBMIT_SQL = f"""
UPDATE {OUTBOX_TABLE}
SET status = %(pending)s, resubmissions = resubmissions + 1, next_attempt_at = now()
WHERE id IN (
    SELECT id FROM {OUTBOX_TABLE}
    WHERE status = %(dead)s AND resubmissions < %(cap)s AND failed_at <= now() - %(cool_down)s
    ORDER BY id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
) AND status = %(dead)s
RETURNING event_type
"""


@dataclass
class ResubmitResult:
    resubmitted: int = 0
    batches: int = 0


def dead_resubmit(*, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES) -> ResubmitResult:
    """Set dead rows whose cool-down has passed and that are under the cap back to pending."""
    result = ResubmitResult()
    cap = settings.OUTBOX_DEAD_RESUBMIT_MAX
    if cap <= 0:
        return result
    params: dict[str, Any] = {
        "pending": OutboxStatus.PENDING,
        "dead": OutboxStatus.DEAD,
        "cap": cap,
        "cool_down": timedelta(seconds=settings.OUTBOX_DEAD_RESUBMIT_AFTER_SECONDS),
        "batch": batch_size,
    }
    while result.batches < max_batches:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_RESUBMIT_SQL, params)
            by_type: Counter[str] = Counter(event_type for (event_type,) in cursor.fetchall())
            if by_type:
                transaction.on_commit(partial(metrics.dead_resubmitted_record, by_type))
                transaction.on_commit(relay_kick, robust=True)
        result.batches += 1
        result.resubmitted += sum(by_type.values())
        if sum(by_type.values()) < batch_size:
            break
    if result.resubmitted:
        logger.info(
            "Resubmitted %d dead outbox rows (cool-down %d s, at most %d times a row)",
            result.resubmitted,
            settings.OUTBOX_DEAD_RESUBMIT_AFTER_SECONDS,
            cap,
        )
    return result
