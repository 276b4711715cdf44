"""python -m devstack.bench write-load-measure [--orders N] [--users U]: the write load per order.

Inside Django, against the servers the environment names (`python -m devstack.bench write-load`
starts fresh ones and runs this). In the order production runs them, each change's events
relayed before the order's next change: create, relay, confirm, relay, ship, relay. Figures for
three phases, each the sum of its steps:
1. create: N orders, one at a time through orders.services.order_create (the call the API's
   create makes, in its own transaction; HTTP and the serializer are not on this path: they cost
   web CPU, not database writes), for --users customers (default one an order: the events' keys);
2. lifecycle: orders_advance with delays 0 until nothing is due, confirm and then ship
   (2 x N transitions);
3. relay: relay_run until nothing is pending, after each of the above (3 x N events to Tansu).
Around each step: pg_current_wal_insert_lsn() (WAL bytes: the insert position, since the
write position lags behind it) and this database's pg_stat_database row
(xact_commit, tup_inserted/updated/deleted). Everything runs on this process's one database
connection, whose statistics are flushed before each reading (pg_stat_force_next_flush), so the
counters hold the step's work and the few reading statements only. Then every topic is read back
from the start: messages, and bytes as key + value + header names and values (the record's own
content; Kafka's batch framing and compression are not counted).
Prints a `figures: {...}` JSON line. Refuses a database that already holds orders.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import override_settings
from kafka import KafkaConsumer, TopicPartition

from devstack.bench import BenchError, bench_parser
from orders import services
from orders.lifecycle import orders_advance
from orders.models import Order, OrderStatus
from orders_project.kafka import topics_create
from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_run

_COUNTERS = """
SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn, xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted
FROM pg_stat_database WHERE datname = current_database()
"""
_NAMES = ("wal_bytes", "xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")
# Per table, to say which rows a phase writes (an outbox partition is a table of its own).
_TABLES = "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"


def counters() -> dict[str, int]:
    """This database's write counters now. The flush is requested first: a backend sends its
    statistics when it goes idle, at most once a second unless asked."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(_COUNTERS)
        row = cursor.fetchone()
        assert row is not None
        result = dict(zip(_NAMES, (int(value) for value in row), strict=True))
        cursor.execute(_TABLES)
        result |= {f"table:{name}": int(rows) for name, rows in cursor.fetchall()}
    return result


def measured(body: Callable[[], int]) -> dict[str, float]:
    """Run one step; what it did ("done"), its seconds, this process's CPU and the counters' differences."""
    before, began, cpu = counters(), time.monotonic(), time.process_time()
    done = body()
    seconds, cpu_seconds = time.monotonic() - began, time.process_time() - cpu
    after = counters()
    delta: dict[str, float] = {name: after[name] - before.get(name, 0) for name in after}
    return delta | {"done": done, "seconds": seconds, "client_cpu_seconds": cpu_seconds}


def phase_figures(steps: list[dict[str, float]], orders: int) -> dict[str, Any]:
    """A phase's steps summed, and per order."""
    total: dict[str, float] = {}
    for step in steps:
        for name, value in step.items():
            total[name] = total.get(name, 0) + value
    tables = {name[6:]: rows for name, rows in total.items() if name.startswith("table:") and rows}
    delta = {name: int(total[name]) for name in _NAMES}
    delta["rows_written"] = delta["tup_inserted"] + delta["tup_updated"] + delta["tup_deleted"]
    return {
        "done": int(total["done"]),
        "seconds": round(total["seconds"], 2),
        "client_cpu_seconds": round(total["client_cpu_seconds"], 2),
        **delta,
        "per_order": {name: round(value / orders, 2) for name, value in delta.items()},
        "rows_per_order_by_table": {name: round(rows / orders, 2) for name, rows in sorted(tables.items())},
    }


def _create(orders: int, users: int) -> int:
    item = services.ItemInput(product_id="bench-prod", quantity=2, price=Decimal("10.00"))
    for n in range(orders):
        services.order_create(
            user_id=f"bench-write-{n % users}", currency="USD", items=[item], shipping_address="1 Bench Street",
            changed_by="user:bench",
        )  # fmt: skip
    return orders


def _advance(*, ship: bool) -> int:
    """Confirm every pending order (ship False: none is due to ship yet), or ship every confirmed one."""
    moved = 0
    with override_settings(ORDER_CONFIRM_DELAY=0, ORDER_SHIP_DELAY=0 if ship else 10**9):
        while (result := orders_advance()).confirmed or result.shipped:
            moved += result.confirmed + result.shipped
    return moved


def _relay(deadline: float) -> int:
    published = 0
    while OutboxEvent.objects.filter(status=OutboxStatus.PENDING).exists():
        if time.monotonic() > deadline:
            raise BenchError("the relay did not publish every event before the deadline")
        result = relay_run()
        if result.failed:
            raise BenchError(f"the relay failed {result.failed} events")
        published += result.published
    return published


def kafka_produced(expected: int, *, timeout: float = 120.0) -> dict[str, Any]:
    """Read every topic of the service from its start: messages and record bytes, per topic."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, group_id=None, max_partition_fetch_bytes=8 * 2**20
    )
    per_topic: dict[str, dict[str, int]] = {}
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in sorted(set(settings.KAFKA_TOPICS.values()))
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        messages, deadline = 0, time.monotonic() + timeout
        while messages < expected and time.monotonic() < deadline:
            for part, records in consumer.poll(timeout_ms=200, max_records=10_000).items():
                figures = per_topic.setdefault(part.topic, {"messages": 0, "bytes": 0})
                for record in records:
                    figures["messages"] += 1
                    figures["bytes"] += len(record.key or b"") + len(record.value or b"")
                    figures["bytes"] += sum(len(name.encode()) + len(value or b"") for name, value in record.headers)
                    messages += 1
    finally:
        consumer.close()
    return {
        "messages": sum(t["messages"] for t in per_topic.values()),
        "bytes": sum(t["bytes"] for t in per_topic.values()),
        "topics": per_topic,
    }


def _parser() -> Any:
    parser = bench_parser("write-load-measure", __doc__)
    parser.add_argument("--orders", type=int, default=2000, help="orders created, moved and relayed (2000)")
    parser.add_argument("--users", type=int, default=None, help="distinct customers, the events' keys (one an order)")
    return parser


def main(argv: list[str]) -> None:
    options = _parser().parse_args(argv)
    orders, users = options.orders, options.users or options.orders
    if orders < 1 or users < 1:
        raise BenchError("--orders and --users must be at least 1")
    if Order.objects.exists():
        raise BenchError("the database holds orders already: the figures would count their moves too")
    topics_create(partitions=settings.KAFKA_TOPIC_PARTITIONS, replication_factor=1)
    figures: dict[str, Any] = {"orders": orders, "users": users, "kafka_partitions": settings.KAFKA_TOPIC_PARTITIONS}
    deadline = time.monotonic() + 600
    steps: dict[str, list[dict[str, float]]] = {"create": [], "lifecycle": [], "relay": []}
    # In the order production runs them: each change's events are relayed before the next
    # change of the order (the confirm comes 30 s after the create, the ship 120 s after that).
    for name, body in (
        ("create", lambda: _create(orders, users)),
        ("relay", lambda: _relay(deadline)),
        ("lifecycle", lambda: _advance(ship=False)),
        ("relay", lambda: _relay(deadline)),
        ("lifecycle", lambda: _advance(ship=True)),
        ("relay", lambda: _relay(deadline)),
    ):
        steps[name].append(measured(body))
    for name, measured_steps in steps.items():
        figures[name] = phase_figures(measured_steps, orders)
    shipped = Order.objects.filter(status=OrderStatus.SHIPPED).count()
    if shipped != orders or figures["lifecycle"]["done"] != 2 * orders:
        raise BenchError(f"{shipped} of {orders} orders shipped, {figures['lifecycle']['done']} transitions")
    events = figures["relay"]["done"]
    kafka = kafka_produced(events)
    if kafka["messages"] != events:
        raise BenchError(f"Kafka holds {kafka['messages']} messages, the relay published {events}")
    kafka["per_order"] = {"messages": round(kafka["messages"] / orders, 2), "bytes": round(kafka["bytes"] / orders)}
    kafka["bytes_per_message"] = round(kafka["bytes"] / max(1, kafka["messages"]))
    figures["kafka"] = kafka
    phases = [figures[name] for name in ("create", "lifecycle", "relay")]
    figures["total_per_order"] = {
        name: round(sum(phase[name] for phase in phases) / orders, 2)
        for name in ("xact_commit", "rows_written", "tup_inserted", "tup_updated", "tup_deleted", "wal_bytes")
    }
    print(f"figures: {json.dumps(figures, sort_keys=True)}", flush=True)
