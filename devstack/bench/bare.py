"""The bare baselines: what the database allows with no Django in between.

`python -m devstack.bench.bare create DSN SECONDS` inserts an order, its item,
its history row and its outbox row per transaction (the rows order_create
writes) for SECONDS on one connection, and prints how many transactions and the
CPU seconds the loop's process spent on them ("<transactions> <cpu seconds>").

`python -m devstack.bench.bare lifecycle DSN ORDERS WORKERS` (the lifecycle's baseline) writes
ORDERS due pending orders, then WORKERS threads, each on its own connection,
confirm and then ship them in transactions of LIFECYCLE_BATCH (orders.lifecycle's
batch shape): lock due rows (SKIP LOCKED), UPDATE status, version and the step's
fields, INSERT a history row and an outbox row per order. Prints
"<transitions> <seconds>"; its rows are deleted afterwards.

`python -m devstack.bench.bare consume-redis BOOTSTRAP REDIS_URL COUNT TOPIC...` (the user-event
consumer's baseline) reads COUNT messages of TOPICs from their beginning in a new consumer
group with the user-event consumer's settings (no auto-commit, 500 records a poll, a commit
after each poll), from the end of the first poll to the end of the last (the group join does
not count, as the user-events bench measures its consumer), decodes each value as JSON and
writes the keys the consumer writes, one pipeline per poll, no script and no checks: per
created/updated event an HSET of its data fields on `users:user:<user_id>` and the
`users:event:<event_id>` marker; per delete the tombstone (HSET deleted, status; EXPIRE)
and the marker. It prints "<messages/s> <CPU us/message>" (CPU of this process over the
same span, kafka-python's threads included) and then deletes every key of REDIS_URL's database
(give it a database of its own).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Any

import psycopg

_ORDER = (
    "INSERT INTO orders_order (id, user_id, status, currency, total_amount, shipping_address, payment_id,"
    " tracking_number, carrier, cancel_reason, version, created_at, updated_at)"
    " VALUES (%s, %s, 'pending', 'USD', 9.00, '', '', '', '', '', 1, now(), now())"
)
_ITEM = "INSERT INTO orders_orderitem (order_id, product_id, quantity, price) VALUES (%s, 'p1', 2, 4.50)"
_HISTORY = (
    "INSERT INTO orders_orderstatuschange (order_id, order_version, from_status, to_status, changed_at, changed_by,"
    " reason) VALUES (%s, 1, '', 'pending', now(), 'client:bench', '')"
)
_OUTBOX = (
    "INSERT INTO outbox_outboxevent (event_id, event_type, topic, key, payload, headers, status, attempts,"
    " next_attempt_at, last_error, created_at) VALUES (%s, 'order.created', 'order.created', %s, %s, %s,"
    " 'pending', 0, now(), '', now())"
)


def create_loop(dsn: str, seconds: float) -> tuple[int, float]:
    """(transactions, CPU seconds of this process while it ran them)."""
    done = 0
    with psycopg.connect(dsn) as conn:
        cpu_before = time.process_time()
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            order_id, event_id, user = uuid.uuid4(), uuid.uuid4(), f"bare-{done % 100}"
            payload = json.dumps({"event_id": str(event_id), "data": {"order_id": str(order_id), "user_id": user}})
            with conn.transaction():
                conn.execute(_ORDER, (order_id, user))
                conn.execute(_ITEM, (order_id,))
                conn.execute(_HISTORY, (order_id,))
                conn.execute(_OUTBOX, (event_id, user, payload, json.dumps({"event_id": str(event_id)})))
            done += 1
        cpu = time.process_time() - cpu_before
    return done, cpu


LIFECYCLE_BATCH = 500  # orders.lifecycle.BATCH_SIZE
_LIFECYCLE_PREFIX = "bare-lifecycle-"
_LIFECYCLE_FILL = (
    "INSERT INTO orders_order (id, user_id, status, currency, total_amount, shipping_address, payment_id,"
    " tracking_number, carrier, cancel_reason, version, created_at, updated_at)"
    " SELECT gen_random_uuid(), %(prefix)s || (n %% 100), 'pending', 'USD', 20.00, '1 Bench Street', '', '', '', '',"
    " 1, now() - interval '1 hour', now() - interval '1 hour' FROM generate_series(1, %(count)s) AS n"
)
_LIFECYCLE_LOCK = (
    "SELECT id FROM orders_order WHERE status = %s AND {column} <= now() ORDER BY {column}, id LIMIT %s"
    " FOR UPDATE SKIP LOCKED"
)
_LIFECYCLE_STEPS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    # to_status: (from_status, time column, UPDATE ... RETURNING id, user_id, version and the event's fields)
    "confirmed": (
        "pending",
        "created_at",
        "UPDATE orders_order SET status = 'confirmed', confirmed_at = now(), updated_at = now(),"
        " version = version + 1, payment_id = 'pay_' || replace(gen_random_uuid()::text, '-', '')"
        " WHERE id = ANY(%s) AND status = 'pending'"
        " RETURNING id, user_id, version, payment_id, total_amount::text, currency, confirmed_at",
        ("payment_id", "total_amount", "currency", "confirmed_at"),
    ),
    "shipped": (
        "confirmed",
        "confirmed_at",
        "UPDATE orders_order SET status = 'shipped', shipped_at = now(), updated_at = now(), version = version + 1,"
        " tracking_number = 'TRK' || upper(substr(md5(random()::text), 1, 12)), carrier = 'UPS',"
        " estimated_delivery = (now() + interval '3 days')::date"
        " WHERE id = ANY(%s) AND status = 'confirmed'"
        " RETURNING id, user_id, version, tracking_number, carrier, estimated_delivery::text, shipped_at",
        ("tracking_number", "carrier", "estimated_delivery", "shipped_at"),
    ),
}
_LIFECYCLE_HISTORY = (
    "INSERT INTO orders_orderstatuschange (order_id, order_version, from_status, to_status, changed_at, changed_by,"
    " reason) VALUES (%s, %s, %s, %s, now(), 'system:lifecycle', '')"
)
_LIFECYCLE_OUTBOX = (
    "INSERT INTO outbox_outboxevent (event_id, event_type, topic, key, payload, headers, status, attempts,"
    " next_attempt_at, last_error, created_at) VALUES (%s, %s, %s, %s, %s, %s, 'pending', 0, now(), '', now())"
)


def _lifecycle_batch(conn: psycopg.Connection, to_status: str) -> int:
    """One batch: the same statements orders.lifecycle runs, with no ORM in between."""
    from_status, column, update, names = _LIFECYCLE_STEPS[to_status]
    event_type = f"order.{to_status}"
    with conn.transaction():
        ids = [row[0] for row in conn.execute(_LIFECYCLE_LOCK.format(column=column), (from_status, LIFECYCLE_BATCH))]
        if not ids:
            return 0
        moved = conn.execute(update, (ids,)).fetchall()
        history, events = [], []
        for order_id, user_id, version, *fields in moved:
            history.append((order_id, version, from_status, to_status))
            event_id = str(uuid.uuid4())
            data = {"order_id": str(order_id), "user_id": user_id, "status": to_status, "order_version": version}
            data.update(zip(names, map(str, fields), strict=True))
            payload = {"event_id": event_id, "event_type": event_type, "version": "1.0", "data": data}
            events.append((event_id, event_type, event_type, user_id, json.dumps(payload), '{"event_id": "x"}'))
        with conn.cursor() as cursor:
            cursor.executemany(_LIFECYCLE_HISTORY, history)
            cursor.executemany(_LIFECYCLE_OUTBOX, events)
    return len(moved)


def lifecycle_loop(dsn: str, orders: int, workers: int) -> tuple[int, float]:
    """Fill `orders` due pending orders, confirm and ship them all with `workers` threads; (transitions, seconds)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_LIFECYCLE_FILL, {"prefix": _LIFECYCLE_PREFIX, "count": orders})
        conn.execute("ANALYZE orders_order")
    counts: list[int] = []
    failures: list[BaseException] = []

    def work() -> None:
        moved = 0
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for to_status in ("confirmed", "shipped"):
                    while done := _lifecycle_batch(conn, to_status):
                        moved += done
        except BaseException as exc:
            failures.append(exc)
        counts.append(moved)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM outbox_outboxevent WHERE key LIKE %s", (_LIFECYCLE_PREFIX + "%",))
        mine = "SELECT id FROM orders_order WHERE user_id LIKE %s"
        conn.execute(f"DELETE FROM orders_orderstatuschange WHERE order_id IN ({mine})", (_LIFECYCLE_PREFIX + "%",))
        conn.execute("DELETE FROM orders_order WHERE user_id LIKE %s", (_LIFECYCLE_PREFIX + "%",))
    if failures:
        raise failures[0]
    return sum(counts), seconds


def _consumer(bootstrap: str, topics: list[str]) -> Any:
    """A kafka-python consumer with the user-event consumer's settings, in a new group."""
    from kafka import KafkaConsumer  # only the consume loops need it

    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap.split(","),
        group_id=f"bare-consume-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,  # as the user-events bench: the first join on Tansu waits half of it
        heartbeat_interval_ms=2000,
        max_poll_records=500,
    )


_MARKER_TTL_SECONDS = 7 * 24 * 3600  # as users_cache.store's (bench code does not import the product here)


def _redis_writes(pipeline: Any, value: bytes) -> None:
    """Queue one message's writes (as the consumer's apply script makes them, without its checks)."""
    try:
        body = json.loads(value)
        data, event_id, event_type = body["data"], body["event_id"], body["event_type"]
        user = f"users:user:{data['user_id']}"
    except (ValueError, KeyError, TypeError):
        return  # a malformed one costs its parse, as in the consumer
    if event_type == "user.deleted":
        pipeline.hset(user, mapping={"deleted": "1", "status": "deleted", "_ts": "0"})
        pipeline.expire(user, _MARKER_TTL_SECONDS)
    else:
        pipeline.hset(user, mapping={**{k: str(v) for k, v in data.items() if v is not None}, "_ts": "0"})
    pipeline.set(f"users:event:{event_id}", "applied", ex=_MARKER_TTL_SECONDS)


def consume_redis_loop(
    bootstrap: str, redis_url: str, count: int, topics: list[str], timeout: float = 300
) -> tuple[float, float]:
    """The user-event consumer's baseline (module docstring): (messages/s, CPU us/message)."""
    import redis  # only this loop needs it

    client = redis.Redis.from_url(redis_url)
    consumer = _consumer(bootstrap, topics)
    deadline = time.monotonic() + timeout
    seen, first_seen, first_at, first_cpu = 0, 0, 0.0, 0.0
    try:
        while seen < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {seen} of {count} messages in {timeout:.0f} s")
            batch = consumer.poll(timeout_ms=1000)
            if not batch:
                continue
            with client.pipeline(transaction=False) as pipeline:
                for records in batch.values():
                    for record in records:
                        _redis_writes(pipeline, record.value)
                        seen += 1
                pipeline.execute()
            consumer.commit()
            if not first_seen:
                first_seen, first_at, first_cpu = seen, time.monotonic(), time.process_time()
        done_at, done_cpu = time.monotonic(), time.process_time()
    finally:
        consumer.close()
    client.flushdb()
    handled = seen - first_seen
    if not handled:
        return float("inf"), 0.0
    return handled / (done_at - first_at), (done_cpu - first_cpu) / handled * 1e6


if __name__ == "__main__":
    if sys.argv[1] == "create":
        transactions, cpu = create_loop(sys.argv[2], float(sys.argv[3]))
        print(transactions, f"{cpu:.3f}")
    elif sys.argv[1] == "lifecycle":
        transitions, seconds = lifecycle_loop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        print(transitions, f"{seconds:.3f}")
    elif sys.argv[1] == "consume-redis":
        rate, cpu = consume_redis_loop(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
        print(f"{rate:.0f} {cpu:.0f}")
