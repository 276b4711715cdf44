"""Delivery delay (commit to Kafka acknowledgement), and the worker's and beat's peak memory.

The real pipeline, as deployed: gunicorn (api.gunicorn, the project's own
configuration), the Celery worker and beat started with Procfile.dev's commands,
Tansu. Orders come through the API at a steady rate (http_load paces them),
each commit kicks the relay (outbox/kick.py: on-commit task through the Redis
broker), beat sweeps every second behind it. Then a burst: 2,000 orders written
by orders_create in transactions of 100, as fast as one process writes them.

The delay of an event is read from its outbox row afterwards: `published_at`
(set by the relay after Kafka acknowledged every row of the batch, acks=all)
minus `created_at` (set when the creating transaction wrote the row, a few
milliseconds before its commit: the figure errs high by that much).
"""

from __future__ import annotations

import statistics
import time
from contextlib import ExitStack
from typing import Any

import psycopg

from devstack.bench import http_load
from devstack.bench.api import ORDERS, gunicorn, token
from devstack.bench.background import procfile_process
from devstack.bench.stack import Stack
from devstack.procs import LOOPBACK

# Enough connections that the paced client can offer the rate even when answers take ~300 ms
# (each connection waits for its answer before its next request).
_CONNECTIONS = 64
_STEADY_PREFIX = "steady-"
_BURST_PREFIX = "burst-"
_BURST_CHUNK = 100
# Orders written by one process in transactions of _BURST_CHUNK; prints the wall times of its start and last commit.
_BURST = """
import time
from decimal import Decimal
from orders.services import ItemInput, OrderInput, orders_create
item = ItemInput(product_id="p1", quantity=2, price=Decimal("4.50"))
first = time.time()
for start in range(0, {count}, {chunk}):
    specs = [OrderInput(user_id=f"{prefix}{{n % 1000}}", currency="USD", items=[item], shipping_address="1 Bench St")
             for n in range(start, min(start + {chunk}, {count}))]
    orders_create(orders=specs, changed_by="system:bench")
print(first, time.time())
"""
_DELAYS = """
SELECT extract(epoch FROM published_at - created_at) FROM outbox_outboxevent
WHERE event_type = 'order.created' AND key LIKE %s AND status = 'published'
"""
_PENDING = "SELECT count(*) FROM outbox_outboxevent WHERE key LIKE %s AND status <> 'published'"
# Relay batches that carried them: rows published together share published_at.
_BATCHES = "SELECT count(DISTINCT published_at) FROM outbox_outboxevent WHERE key LIKE %s"
_LAST_ACK = "SELECT extract(epoch FROM max(published_at)), count(*) FROM outbox_outboxevent WHERE key LIKE %s"


def _wait_published(dsn: str, prefix: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(_PENDING, (prefix + "%",)).fetchone()
            left = row[0] if row else 0
            if not left:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{left} events with keys {prefix}* still unpublished after {timeout:.0f} s")
            time.sleep(0.02)


def _percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100)
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def delivery_figures(stack: Stack, *, rate: float, seconds: float, burst: int) -> dict[str, Any]:
    """Steady API load at `rate`/s for `seconds`, then a burst of `burst` orders; per-event delay
    from the outbox rows, the burst's last ack after its last commit, peak memory of worker and beat."""
    stack.manage("create_kafka_topics")
    key = token(stack)
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    figures: dict[str, Any] = {"rate_asked": rate}

    def body(n: int) -> bytes:
        return (
            b'{"user_id": "%s%d", "currency": "USD", "items": [{"product_id": "p1", "quantity": 2, "price": "4.50"}]}'
            % (_STEADY_PREFIX.encode(), n % 1000)
        )

    with ExitStack() as running:
        worker = running.enter_context(procfile_process(stack, "worker"))
        beat = running.enter_context(procfile_process(stack, "beat"))
        port, web = running.enter_context(gunicorn(stack))
        # Warm up: the worker's first relay run builds its Kafka producer (bootstrap, producer id).
        http_load.run(
            host=LOOPBACK, port=port, method="POST", paths=lambda n: ORDERS, connections=2,
            seconds=1.0, headers=dict(headers), bodies=lambda n: body(n).replace(b"steady-", b"warmup-"),
        )  # fmt: skip
        _wait_published(stack.dsn, "warmup-", 60)
        result = http_load.run(
            host=LOOPBACK, port=port, method="POST", paths=lambda n: ORDERS, connections=_CONNECTIONS,
            seconds=seconds, headers=dict(headers), bodies=body, rate=rate,
        )  # fmt: skip
        wrong = sum(count for status, count in result.statuses.items() if status != 201)
        if wrong:
            raise RuntimeError(f"{wrong} of {result.requests} creates were not 201: {result.statuses}")
        _wait_published(stack.dsn, _STEADY_PREFIX, 60)
        with psycopg.connect(stack.dsn, autocommit=True) as conn:
            delays = [float(row[0]) for row in conn.execute(_DELAYS, (_STEADY_PREFIX + "%",))]
            batches = conn.execute(_BATCHES, (_STEADY_PREFIX + "%",)).fetchone()
        figures["steady"] = {
            "orders": len(delays),
            "rate": round(result.rate, 1),
            "api_p50_ms": round(result.percentile(50), 1),
            "api_p99_ms": round(result.percentile(99), 1),
            "relay_batches": batches[0] if batches else 0,
            **_percentiles(delays),
        }
        script = _BURST.format(count=burst, chunk=_BURST_CHUNK, prefix=_BURST_PREFIX)
        first_write, last_commit = map(float, stack.manage("shell", "-c", script).split()[-2:])
        _wait_published(stack.dsn, _BURST_PREFIX, 120)
        with psycopg.connect(stack.dsn, autocommit=True) as conn:
            row = conn.execute(_LAST_ACK, (_BURST_PREFIX + "%",)).fetchone()
        assert row is not None
        figures["burst"] = {
            "orders": int(row[1]),
            "chunk": _BURST_CHUNK,
            "write_seconds": round(last_commit - first_write, 2),
            "last_ack_after_last_commit_ms": round((float(row[0]) - last_commit) * 1000, 1),
        }
        worker.check_running()
        beat.check_running()
        figures["cpu_seconds"] = {
            "web": round(web.cpu_seconds(), 1),
            "worker": round(worker.memory.cpu_seconds(), 1),
            "beat": round(beat.memory.cpu_seconds(), 1),
        }
        figures["web_peak_mb"] = round(web.stop(), 1)
        figures["worker_peak_mb"] = round(worker.memory.stop(), 1)
        figures["beat_peak_mb"] = round(beat.memory.stop(), 1)
    return figures
