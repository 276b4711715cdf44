"""The service as the drill drives it: the HTTP API (gunicorn), the relay (Celery worker
and beat, Procfile.dev's commands), the lifecycle, and what is on Kafka.

Processes come from devstack/bench (gunicorn, procfile_process); the drill only
adds an HTTP client, a lifecycle step and a reader of the order topics.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from devstack.bench.api import gunicorn
from devstack.bench.background import procfile_process
from devstack.bench.stack import Stack
from devstack.procs import LOOPBACK

ORDERS = "/api/v1/orders/"
ORDER_TOPICS = ("order.created", "order.confirmed", "order.shipped", "order.cancelled")
VOIDED_TOPIC = "order.voided"
_ADVANCE = "from orders.lifecycle import orders_advance; r = orders_advance(); print(r.confirmed, r.shipped)"
_LEASE = """
import uuid, datetime as dt
from django.conf import settings
from django.utils import timezone
from outbox.models import OutboxEvent
ids = list(OutboxEvent.objects.filter(status="pending").order_by("id").values_list("id", flat=True)[:{count}])
until = timezone.now() + dt.timedelta(seconds=settings.OUTBOX_RELAY_LEASE_SECONDS)
print(OutboxEvent.objects.filter(id__in=ids).update(claimed_by=uuid.uuid4(), claimed_until=until))
"""


@dataclass
class Api:
    port: int
    token: str

    def call(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.port}{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def create(self, user_id: str, key: str) -> tuple[int, str]:
        """POST an order with an Idempotency-Key; (status, order id)."""
        body = {"user_id": user_id, "currency": "USD", "items": [{"product_id": "p1", "quantity": 1, "price": "9.50"}]}
        status, answer = self.call("POST", ORDERS, body, {"Idempotency-Key": key})
        if status not in (200, 201):
            raise RuntimeError(f"create answered {status}: {answer}")
        return status, str(answer["id"])

    def cancel(self, order_id: str) -> None:
        status, answer = self.call("POST", f"{ORDERS}{order_id}/cancel/", {"reason": "drill"})
        if status != 200:
            raise RuntimeError(f"cancel answered {status}: {answer}")


def advance(stack: Stack) -> tuple[int, int]:
    """One lifecycle run with no delays: every pending order confirmed, every confirmed shipped."""
    instant = replace(stack, env={**stack.env, "ORDER_CONFIRM_DELAY": "0", "ORDER_SHIP_DELAY": "0"})
    confirmed, shipped = instant.manage("shell", "-c", _ADVANCE).split()[-2:]
    return int(confirmed), int(shipped)


def lease_to_a_dead_relay(stack: Stack, count: int) -> int:
    """Lease `count` pending outbox rows to a relay id no process has, as a relay killed in the
    middle of a batch leaves them (its lease, OUTBOX_RELAY_LEASE_SECONDS on the database clock)."""
    return int(stack.manage("shell", "-c", _LEASE.format(count=count)).split()[-1])


@contextmanager
def api(stack: Stack, token: str) -> Iterator[Api]:
    with gunicorn(stack) as (port, _memory):
        yield Api(port, token)


@contextmanager
def relay(stack: Stack) -> Iterator[None]:
    """The relay as deployed: a Celery worker (kicked on commit) and beat (its sweep)."""
    with ExitStack() as processes:
        for name in ("worker", "beat"):
            processes.enter_context(procfile_process(stack, name))
        yield


def outbox_pending(stack: Stack) -> int:
    rows = stack.manage(
        "shell",
        "-c",
        "from outbox.models import OutboxEvent as E; print(E.objects.exclude(status='published').count())",
    )
    return int(rows.split()[-1])


def wait_published(stack: Stack, timeout: float = 120.0) -> float:
    """Wait until no outbox row is left unpublished; returns seconds."""
    started = time.monotonic()
    while outbox_pending(stack):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"outbox rows still unpublished after {timeout}s")
        time.sleep(0.5)
    return time.monotonic() - started


@dataclass(frozen=True)
class Message:
    topic: str
    event_id: str
    event_type: str
    order_id: str
    order_version: int | None


def kafka_messages(bootstrap: str, topics: tuple[str, ...] = (*ORDER_TOPICS, VOIDED_TOPIC)) -> list[Message]:
    """Every message of `topics` from the beginning to each partition's end as its first fetch
    reports it (end_offsets() is unreliable on Tansu)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        out: list[Message] = []
        ends: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                for record in records:
                    value = json.loads(record.value)
                    data = value["data"]
                    out.append(
                        Message(
                            record.topic,
                            value["event_id"],
                            value["event_type"],
                            data["order_id"],
                            data.get("order_version"),
                        )
                    )
            for tp in partitions:
                if tp not in ends and consumer.highwater(tp) is not None:
                    ends[tp] = consumer.highwater(tp)
            if len(ends) == len(partitions) and all(consumer.position(tp) >= end for tp, end in ends.items()):
                return out
        raise RuntimeError("the order topics were not read to their end in 60 s")
    finally:
        consumer.close()
