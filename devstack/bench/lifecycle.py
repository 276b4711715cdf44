"""python -m devstack.bench lifecycle [--orders N] [--workers 1,3]: lifecycle transitions per second.

For each worker count: create N pending orders (one bulk transaction per
chunk, each order with its item, first history row and `order.created` event,
as `order_create` writes them), then start that many threads, each with its
own database connection, running `orders_advance` with both delays overridden
to 0 until a run finds nothing left. Every order moves twice (confirm, ship),
so a round is 2 x N transitions. Whatever the round created (orders, items,
history, outbox rows) is deleted afterwards, also after a failure.

It advances *every* due order of the database, so it refuses to run while
orders it did not create are pending or confirmed (unless --force). The
events it writes kick the outbox relay like any other change: a running
worker may publish some of them before they are deleted.
"""

import argparse
import uuid
from decimal import Decimal

from django.test import override_settings

from devstack.bench import BenchError, bench_parser
from devstack.threads import run_in_threads
from orders.lifecycle import BATCH_SIZE, orders_advance
from orders.models import Order, OrderStatus
from orders.services import ItemInput, OrderInput, orders_create
from outbox.models import OutboxEvent

BENCH_PREFIX = "bench-lifecycle-"
_CHUNK = 1000
# Enough batches per run that one run may drain the backlog; runs repeat until idle anyway.
_MAX_BATCHES = 1000


def orders_bulk_create(count: int, *, user_prefix: str, changed_by: str = "system:bench") -> list[uuid.UUID]:
    """Create `count` pending orders through orders.services.orders_create, in chunks. Returns the ids."""
    item = ItemInput(product_id="bench-prod", quantity=2, price=Decimal("10.00"))
    ids: list[uuid.UUID] = []
    for start in range(0, count, _CHUNK):
        specs = [
            OrderInput(
                user_id=f"{user_prefix}{n % 100}", currency="USD", items=[item], shipping_address="1 Bench Street"
            )
            for n in range(start, min(start + _CHUNK, count))
        ]
        ids.extend(order.id for order in orders_create(orders=specs, changed_by=changed_by))
    return ids


def run_workers(workers: int, *, batch_size: int) -> tuple[int, float]:
    """Run `workers` threads of `orders_advance` until idle; returns (transitions, seconds)."""

    def work() -> int:
        moved = 0
        while True:
            result = orders_advance(batch_size=batch_size, max_batches=_MAX_BATCHES)
            if not (result.confirmed or result.shipped):
                return moved
            moved += result.confirmed + result.shipped

    try:
        moved, elapsed = run_in_threads([work] * workers)
    except Exception as exc:
        raise BenchError(f"A worker failed: {exc!r}") from exc
    return sum(moved), elapsed


def bench_cleanup(user_prefix: str) -> None:
    OutboxEvent.objects.filter(key__startswith=user_prefix).delete()
    Order.objects.filter(user_id__startswith=user_prefix).delete()  # items and history cascade


def _parser() -> argparse.ArgumentParser:
    parser = bench_parser("lifecycle", __doc__)
    parser.add_argument("--orders", type=int, default=3000, help="Due orders per round (default 3000).")
    parser.add_argument("--workers", default="1,3", help="Comma-separated worker counts (default 1,3).")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"Default {BATCH_SIZE}.")
    parser.add_argument("--force", action="store_true", help="Run even if other orders are due.")
    return parser


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    orders, batch_size, force = args.orders, args.batch_size, args.force
    counts = [int(part) for part in args.workers.split(",") if part.strip()]
    if orders < 1 or batch_size < 1 or not counts or min(counts) < 1:
        raise BenchError("--orders, --batch-size and every --workers count must be at least 1.")
    foreign = Order.objects.filter(status__in=[OrderStatus.PENDING, OrderStatus.CONFIRMED]).count()
    if foreign and not force:
        raise BenchError(
            f"{foreign} pending/confirmed orders exist; with delays 0 the benchmark would advance them too. "
            "Use an empty database, or --force."
        )
    for count in counts:
        prefix = f"{BENCH_PREFIX}{uuid.uuid4().hex[:8]}-"
        try:
            orders_bulk_create(orders, user_prefix=prefix)
            with override_settings(ORDER_CONFIRM_DELAY=0, ORDER_SHIP_DELAY=0):
                transitions, seconds = run_workers(count, batch_size=batch_size)
            left = Order.objects.filter(user_id__startswith=prefix).exclude(status=OrderStatus.SHIPPED).count()
            if left or (transitions != 2 * orders and not force):
                raise BenchError(f"Expected {2 * orders} transitions, got {transitions}; {left} not shipped.")
            print(
                f"workers={count} orders={orders} batch_size={batch_size}: {transitions} transitions "
                f"in {seconds:.2f} s = {transitions / seconds:.0f} transitions/s",
                flush=True,
            )
        finally:
            bench_cleanup(prefix)
