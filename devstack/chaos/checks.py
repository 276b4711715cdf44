"""The invariants `make chaos` checks after every scenario, and the one line it prints for it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import redis

from devstack.chaos.load import ORDER_TOPICS, ApiStats, UserEvents, Watch
from devstack.chaos.stack import Stack
from devstack.procs import LOOPBACK

SETTLE_DEADLINE = 180.0


@dataclass
class Figures:
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    pending: int = 0
    dead: int = 0
    duplicate_orders: int = 0
    duplicate_transitions: int = 0
    orders_missing: int = 0
    users_unprocessed: int = 0
    replica_wrong: int = 0
    idle_in_transaction: int = 0


def _users_redis(stack: Stack) -> redis.Redis:
    env = stack.templates["web"].env
    db = int(env.get("REDIS_USERS_DB", (int(env.get("REDIS_DB", "0")) + 2) % 16))
    return redis.Redis(host=LOOPBACK, port=stack.vk.port, db=db, socket_timeout=5)


def measure(stack: Stack, stats: ApiStats, users: UserEvents, watch: Watch) -> Figures:
    figures = Figures()
    topics = list(ORDER_TOPICS)
    rows = stack.sql("SELECT event_id::text, status FROM outbox_outboxevent WHERE topic = ANY(%s)", [topics])
    expected = {event_id for event_id, _ in rows}
    figures.pending = sum(1 for _, status in rows if status == "pending")
    figures.dead = sum(1 for _, status in rows if status == "dead")
    with watch.lock:
        figures.delivered = len(watch.delivered & expected)
    figures.expected = len(expected)
    figures.lost = figures.expected - figures.delivered
    # One logical create (one Idempotency-Key, tagged in its product id) -> one order.
    figures.duplicate_orders = stack.sql(
        "SELECT count(*) FROM (SELECT product_id FROM orders_orderitem WHERE product_id LIKE 'chaos-%%' "
        "GROUP BY product_id HAVING count(DISTINCT order_id) > 1) d"
    )[0][0]
    # One step of an order -> one event (a confirm, ship or cancel done twice would write two).
    figures.duplicate_transitions = stack.sql(
        "SELECT count(*) FROM (SELECT payload->'data'->>'order_id', event_type FROM outbox_outboxevent "
        "GROUP BY 1, 2 HAVING count(*) > 1) d"
    )[0][0]
    with stats.lock:
        ids = list(stats.order_ids)
    found = stack.sql("SELECT count(*) FROM orders_order WHERE id = ANY(%s::uuid[])", [ids])[0][0] if ids else 0
    figures.orders_missing = len(ids) - found
    client = _users_redis(stack)
    try:
        with users.lock:
            sent = list(users.sent)
            names = dict(users.names)
        pipe = client.pipeline(transaction=False)
        for event_id in sent:
            pipe.exists(f"users:event:{event_id}")
        figures.users_unprocessed = sum(1 for found_ in pipe.execute() if not found_)
        pipe = client.pipeline(transaction=False)
        for user_id in names:
            pipe.hget(f"users:user:{user_id}", "name")
        stored = pipe.execute()
        figures.replica_wrong = sum(
            1 for (user_id, name), value in zip(names.items(), stored, strict=True) if (value or b"").decode() != name
        )
    finally:
        client.close()
    return figures


def settled(figures: Figures) -> bool:
    return not (figures.lost or figures.pending or figures.users_unprocessed or figures.orders_missing)


def wait_settled(stack: Stack, stats: ApiStats, users: UserEvents, watch: Watch) -> tuple[Figures, float | None]:
    """Measure until the outbox is drained, the watcher has every event and the consumer every
    user event; returns the figures and the seconds it took (None: not within the deadline)."""
    began = time.monotonic()
    while True:
        try:
            figures = measure(stack, stats, users, watch)
        except Exception:  # a server still coming back
            figures = None
        if figures is not None and settled(figures):
            return figures, time.monotonic() - began
        if time.monotonic() - began > SETTLE_DEADLINE:
            return figures or Figures(lost=-1), None
        time.sleep(0.5)


class RecoveryClock:
    """Time to recover: from the end of a fault until what existed then has been caught up on.

    At the fault's end it notes the order events in the outbox (pending ones
    included) and the user events sent so far; it stops when the watcher has every
    one of those events and the consumer has processed every one of those user
    events. Work that arrives later (the load goes on) does not move the line.
    """

    def __init__(self, stack: Stack, users: UserEvents, watch: Watch) -> None:
        self.stack, self.users, self.watch = stack, users, watch
        self.seconds: float | None = None
        self.began = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name="recovery-clock")
        self._thread.start()

    def _snapshot(self) -> tuple[set[str], list[str]]:
        while True:
            try:
                rows = self.stack.sql(
                    "SELECT event_id::text FROM outbox_outboxevent WHERE topic = ANY(%s)", [list(ORDER_TOPICS)]
                )
                break
            except Exception:  # PostgreSQL still coming back
                if time.monotonic() - self.began > SETTLE_DEADLINE:
                    raise
                time.sleep(0.25)
        with self.users.lock:
            return {row[0] for row in rows}, list(self.users.sent)

    def _run(self) -> None:
        events, sent = self._snapshot()
        client = _users_redis(self.stack)
        try:
            while time.monotonic() - self.began < SETTLE_DEADLINE:
                with self.watch.lock:
                    events -= self.watch.delivered
                if not events:
                    try:
                        pipe = client.pipeline(transaction=False)
                        for event_id in sent:
                            pipe.exists(f"users:event:{event_id}")
                        sent = [e for e, found in zip(sent, pipe.execute(), strict=True) if not found]
                    except redis.RedisError:
                        pass
                    if not sent:
                        self.seconds = time.monotonic() - self.began
                        return
                time.sleep(0.1)
        finally:
            client.close()

    def wait(self) -> float | None:
        self._thread.join(SETTLE_DEADLINE + 10)
        return self.seconds


def idle_in_transaction(stack: Stack, seconds: float = 5.0) -> int:
    """Sessions of the service idle in a transaction for longer than `seconds`."""
    rows = stack.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%%' "
        "AND now() - state_change > make_interval(secs => %s)",
        [seconds],
    )
    return int(rows[0][0])
