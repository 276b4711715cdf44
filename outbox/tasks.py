"""Celery tasks of the outbox: thin wrappers around the relay and the cleanup."""

import logging

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.core.cache import cache

from outbox import cleanup, relay
from outbox.kick import KICK_KEY
from outbox.producer import producer_discard

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


@shared_task(name="outbox.cleanup", ignore_result=True)
def cleanup_outbox() -> int:
    return cleanup.cleanup_published()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_producer(**kwargs: object) -> None:
    producer_discard()
