"""Celery tasks of the orders app: thin wrappers around the lifecycle service."""

from celery import shared_task

from orders.idempotency import idempotency_keys_purge
from orders.lifecycle import orders_advance


@shared_task(name="orders.advance", ignore_result=True)
def advance_orders() -> dict[str, int]:
    result = orders_advance()
    return {"confirmed": result.confirmed, "shipped": result.shipped}


@shared_task(name="orders.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    return idempotency_keys_purge()
