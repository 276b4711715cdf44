"""Celery tasks of the outbox: thin wrappers around the relay, the retention, the delivery
audit and the automatic resubmission of dead rows."""

import logging

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.core.cache import cache

from outbox import relay
from outbox.audit_window import audit_step
from outbox.kick import KICK_KEY
from outbox.producer import producer_discard
from outbox.resubmission import dead_resubmit
from outbox.services import outbox_retention_run

logger = logging.getLogger(__name__)


@shared_task(name="outbox.relay", ignore_result=True)
def relay_outbox() -> dict[str, int]:
    # Clear the kick marker first: a commit landing during this run queues a new
    # run instead of being coalesced into one that may already have looked.
    try:
        cache.delete(KICK_KEY)
    except Exception:  # the relay does not need Redis; a later kick is only delayed
        logger.warning("Could not clear the relay kick marker", exc_info=True)
    result = relay.relay_run()
    return {"published": result.published, "failed": result.failed, "batches": result.batches}


@shared_task(name="outbox.retention", ignore_result=True)
def retention_outbox() -> dict[str, int]:
    result = outbox_retention_run()
    return {"dropped": len(result.dropped), "kept": len(result.kept), "created": len(result.created)}


@shared_task(name="outbox.audit", ignore_result=True)
def audit_outbox() -> dict[str, int]:
    # One batch of the recent window read back from Kafka (outbox/audit_window.py).
    return audit_step().figures()


@shared_task(name="outbox.resubmit_dead", ignore_result=True)
def resubmit_dead_outbox() -> dict[str, int]:
    # Straight to the module, as the relay task does: its metrics belong to the worker only.
    result = dead_resubmit()
    return {"resubmitted": result.resubmitted, "batches": result.batches}


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_producer(**kwargs: object) -> None:
    producer_discard()
