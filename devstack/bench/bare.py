"""The bare baselines: what the database allows with no Django in between.

`python -m devstack.bench.bare create DSN SECONDS` inserts an order, its item,
its history row and its outbox row per transaction (the rows order_create
writes) for SECONDS on one connection, and prints how many transactions.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

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


def create_loop(dsn: str, seconds: float) -> int:
    done = 0
    with psycopg.connect(dsn) as conn:
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
    return done


if __name__ == "__main__":
    if sys.argv[1] == "create":
        print(create_loop(sys.argv[2], float(sys.argv[3])))
