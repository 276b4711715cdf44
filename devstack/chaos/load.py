"""Load for `make chaos`: API clients, user events, and an independent watcher of the order topics.

Every loop is bounded in count and time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import itertools
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from devstack.chaos.stack import Stack
from devstack.procs import LOOPBACK

ORDER_TOPICS = ("order.created", "order.confirmed", "order.shipped", "order.cancelled")
USER_TOPICS = {"created": "user.created", "updated": "user.updated", "deleted": "user.deleted"}
USERS = 40
# A create is retried with its Idempotency-Key for this long (connection refused,
# 503, a pod draining): what a careful client does, and what makes "no duplicate
# order" a claim about the service, not about the client.
RETRY_SECONDS = 60.0
CANCEL_SHARE = 0.2


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class ApiStats:
    created: int = 0
    cancelled: int = 0
    requests: int = 0
    status: Counter[int] = field(default_factory=Counter)
    no_retry_after: int = 0
    connection_errors: int = 0
    given_up: int = 0  # requests still unanswered (503, 409 in progress, refused) when the load stopped
    gaps: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    last_answer: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    order_ids: list[str] = field(default_factory=list)

    def answered(self, code: int, took: float, retry_after: bool) -> None:
        now = time.monotonic()
        with self.lock:
            self.requests += 1
            self.status[code] += 1
            self.latencies.append(took)
            if self.last_answer:
                self.gaps.append(now - self.last_answer)
            self.last_answer = now
            if code == 503 and not retry_after:
                self.no_retry_after += 1

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.status.items() if code >= 500)

    @property
    def errors_500(self) -> int:
        """5xx that are not a 503 with Retry-After: the service failed instead of saying 'later'."""
        return sum(n for code, n in self.status.items() if code >= 500 and code != 503) + self.no_retry_after


class ApiClient:
    """One client: creates orders (retrying each with its own Idempotency-Key), cancels some."""

    def __init__(self, stack: Stack, stats: ApiStats, users: list[str], seed: int, stop: threading.Event) -> None:
        self.stack, self.stats, self.users, self.stop = stack, stats, users, stop
        self.random = random.Random(seed)
        self.token = stack.tokens[seed % len(stack.tokens)]
        self.conn: http.client.HTTPConnection | None = None
        self.port = 0

    def _request(self, method: str, path: str, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
        ports = self.stack.web_ports()
        if not ports:
            raise ConnectionRefusedError("no ready web pod")
        if self.conn is None or self.port not in ports:
            self.close()
            self.port = self.random.choice(ports)
            self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
        headers = {
            "Host": self.stack.host,
            "X-Forwarded-Proto": "https",
            "Authorization": f"Token {self.token}",
            "Content-Type": "application/json",
        }
        if key:
            headers["Idempotency-Key"] = key
        began = time.monotonic()
        try:
            self.conn.request(method, path, body=json.dumps(body), headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        self.stats.answered(response.status, time.monotonic() - began, response.getheader("Retry-After") is not None)
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, (json.loads(data) if data.startswith(b"{") else None)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _with_retries(self, method: str, path: str, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                status, answer = self._request(method, path, body, key)
                if status not in (502, 503, 504) and not (status == 409 and key):
                    return status, answer
            except (OSError, http.client.HTTPException):
                with self.stats.lock:
                    self.stats.connection_errors += 1
            if time.monotonic() > deadline or self.stop.is_set():
                with self.stats.lock:
                    self.stats.given_up += 1
                return 0, None
            time.sleep(0.2 + self.random.random() * 0.3)

    def one(self) -> None:
        tag = uuid.uuid4().hex
        quantity = self.random.randint(1, 3)
        body = {
            "user_id": self.random.choice(self.users),
            "currency": "EUR",
            "items": [{"product_id": f"chaos-{tag}", "quantity": quantity, "price": "10.00"}],
        }
        status, answer = self._with_retries("POST", "/api/v1/orders/", body, f"chaos-{tag}")
        if status != 201:
            return
        with self.stats.lock:
            self.stats.created += 1
            self.stats.order_ids.append(answer["id"])
        if self.random.random() < CANCEL_SHARE:
            path = f"/api/v1/orders/{answer['id']}/cancel/"
            status, _ = self._with_retries("POST", path, {"reason": "chaos"}, None)
            if status == 200:
                with self.stats.lock:
                    self.stats.cancelled += 1


def api_load(
    stack: Stack,
    stats: ApiStats,
    users: list[str],
    *,
    clients: int,
    seconds: float,
    pause: float,
    stop: threading.Event,
) -> list[threading.Thread]:
    """`clients` threads creating orders for `seconds` (or until `stop`), `pause` between requests."""
    deadline = time.monotonic() + seconds

    def loop(seed: int) -> None:
        client = ApiClient(stack, stats, users, seed, stop)
        try:
            while time.monotonic() < deadline and not stop.is_set():
                client.one()
                if pause:
                    time.sleep(pause)
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(i,), daemon=True, name=f"api-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    return threads


class UserEvents:
    """user.* events through kafka-python; remembers what the replica must end up holding."""

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaProducer

        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            request_timeout_ms=5000,
            delivery_timeout_ms=120_000,
            max_block_ms=120_000,
            linger_ms=5,
        )
        self.sent: list[str] = []  # event ids the consumer must process
        self.names: dict[str, str] = {}  # user_id -> the name of its last update
        self.poison = 0
        self.lock = threading.Lock()

    def _send(self, kind: str, user_id: str, data: dict[str, Any]) -> None:
        event_id = str(uuid.uuid4())
        event = {
            "event_id": event_id,
            "event_type": f"user.{kind}",
            "timestamp": _now(),
            "version": "1.0",
            "data": {"user_id": user_id, **data},
        }
        self.producer.send(USER_TOPICS[kind], key=user_id.encode(), value=json.dumps(event).encode())
        with self.lock:
            self.sent.append(event_id)

    def create(self, user_id: str) -> None:
        name = f"User {user_id}"
        data = {"email": f"{user_id}@example.com", "name": name, "status": "active", "created_at": _now()}
        self._send("created", user_id, data)
        self.names[user_id] = name

    def update(self, user_id: str) -> None:
        name = f"User {user_id} {uuid.uuid4().hex[:8]}"
        self._send("updated", user_id, {"name": name, "updated_at": _now()})
        self.names[user_id] = name

    def poison_pill(self) -> None:
        self.producer.send(USER_TOPICS["updated"], key=b"poison", value=b"\xffnot json{")
        self.poison += 1

    def burst(self, users: list[str], count: int, poison_at: int | None = None) -> None:
        for i in range(count):
            if i == poison_at:
                self.poison_pill()
            self.update(random.choice(users))
        self.flush()

    def flush(self) -> None:
        self.producer.flush(120)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.producer.close(5)


@dataclass
class Watch:
    delivered: set[str] = field(default_factory=set)
    wire_duplicates: int = 0
    # order_id -> {order_version: broker timestamp of its first delivery}
    first_seen: dict[str, dict[int, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def order_violations(self) -> int:
        """Orders whose events reached Kafka out of version order.

        One order's events go to different topics (order.created, order.cancelled, ...),
        and a consumer of several topics gets them interleaved in any order; what the
        relay promises is the order in which they are appended. So each event's record
        timestamp (set as the relay sends it) is compared: a later version of an order
        first appended before an earlier one is a violation. A redelivered event id is a
        duplicate on the wire (at-least-once), not a violation.
        """
        with self.lock:
            seen = [dict(versions) for versions in self.first_seen.values()]
        violations = 0
        for versions in seen:
            stamps = [versions[v] for v in sorted(versions)]
            violations += sum(1 for a, b in itertools.pairwise(stamps) if b < a)
        return violations


def watch_orders(bootstrap: str, watch: Watch, stop: threading.Event) -> threading.Thread:
    """An independent consumer of the order topics: what arrived, twice, or out of order."""
    from kafka import KafkaConsumer

    def loop() -> None:
        consumer = KafkaConsumer(
            *ORDER_TOPICS,
            bootstrap_servers=bootstrap,
            group_id=f"chaos-watch-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
        )
        try:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        event = json.loads(record.value)
                        data = event.get("data", {})
                        with watch.lock:
                            if event["event_id"] in watch.delivered:
                                watch.wire_duplicates += 1
                                continue
                            watch.delivered.add(event["event_id"])
                            order_id, version = str(data.get("order_id")), int(data.get("order_version", 0))
                            watch.first_seen.setdefault(order_id, {})[version] = record.timestamp
        finally:
            consumer.close()

    thread = threading.Thread(target=loop, daemon=True, name="watch")
    thread.start()
    return thread
