"""Celery tasks of the orders app: thin wrappers around the lifecycle service."""

from celery import shared_task

from orders.lifecycle import orders_advance


@shared_task(name="orders.advance", ignore_result=True)
def advance_orders() -> dict[str, int]:
    result = orders_advance()
    return {"confirmed": result.confirmed, "shipped": result.shipped}
