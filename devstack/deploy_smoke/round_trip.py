"""The order round trip through the running containers: a user.created event for the
consumer, an order POSTed to the web port, its order.created event on Kafka (relayed by
the worker), and every process's /metrics."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path

from devstack.deploy_smoke.kube_env import POD_IP
from devstack.deploy_smoke.pod import Container, named_port
from devstack.deploy_smoke.probes import http_request
from devstack.deploy_smoke.steps import SmokeFailed, note

SMOKE_USER = "deploy-smoke-user"
ORDER_BODY = {
    "user_id": SMOKE_USER,
    "total_amount": "99.98",
    "currency": "USD",
    "items": [{"product_id": "prod1", "quantity": 2, "price": "49.99"}],
}
ORDER_DEADLINE = 60.0
EVENT_DEADLINE = 60.0


def api_host(env: dict[str, str]) -> str:
    """A Host the settings allow, as a client through the ingress sends it."""
    for host in env.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        host = host.strip().lstrip(".")
        if host and host != "*":
            return host
    return "orders.example.com"


def publish_user(bootstrap: str, topic: str) -> None:
    """A user.created event, so a production setting ORDER_REQUIRE_KNOWN_USER=true accepts the order.

    It reaches the order service through the consumer container: the order going
    through proves that container works too.
    """
    from kafka import KafkaProducer

    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "user.created",
        "timestamp": now,
        "version": "1.0",
        "data": {
            "user_id": SMOKE_USER,
            "email": "smoke@example.com",
            "name": "Deploy Smoke",
            "status": "active",
            "created_at": now,
        },
    }
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=5000, delivery_timeout_ms=15000, max_block_ms=15000
    )
    try:
        producer.send(topic, key=SMOKE_USER.encode(), value=json.dumps(event).encode()).get(timeout=15)
        producer.flush(10)
    finally:
        producer.close(5)


def post_order(web: Container, token: str) -> str:
    """POST the README's order through the web port until the user is known; returns the order id."""
    headers = {
        "Host": api_host(web.env),
        "X-Forwarded-Proto": "https",  # what the ingress that ends TLS sends
        "Authorization": f"Token {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": f"deploy-smoke-{uuid.uuid4()}",
    }
    body = json.dumps(ORDER_BODY).encode()
    port = named_port(web, "http")
    deadline = time.monotonic() + ORDER_DEADLINE
    while True:
        status, answer = http_request(port, "POST", "/api/v1/orders/", headers, body, 10)
        if status == 201:
            order_id = str(json.loads(answer)["id"])
            note(f"order {order_id} created (201)")
            return order_id
        waiting_for_user = status == 422 and b"user_not_found" in answer
        if not waiting_for_user or time.monotonic() > deadline:
            raise SmokeFailed(f"POST /api/v1/orders/ answered {status}: {answer[:500]!r}", [web.log])
        time.sleep(0.5)  # the consumer has not stored the user yet


# chart's dashboard and alerts rely on for that kind.
METRICS_EXPECTED = {
    "web": ("orders_created_total", "django_http_responses_total_by_status_total"),
    "worker": ("kafka_events_published_total", "outbox_delivery_delay_seconds_bucket", "outbox_events_pending"),
    "beat": ("process_start_time_seconds",),
    "consumer": ("kafka_events_consumed_total", "kafka_consumer_lag_messages"),
}


def scrape_metrics(container: Container) -> None:
    """GET /metrics on the container's metrics port (as Prometheus does, by pod IP); each expected name is there."""
    status, body = http_request(named_port(container, "metrics"), "GET", "/metrics", {"Host": f"{POD_IP}:9100"})
    if status != 200:
        raise SmokeFailed(f"{container.label}: GET /metrics on its metrics port answered {status}", [container.log])
    text = body.decode(errors="replace")
    missing = [name for name in METRICS_EXPECTED.get(container.pod, ()) if f"\n{name}" not in f"\n{text}"]
    if missing:
        raise SmokeFailed(f"{container.label}: /metrics lacks {', '.join(missing)}", [container.log])
    note(f"{container.label}: /metrics answers on its port ({len(text.splitlines())} lines)")


def wait_for_event(bootstrap: str, topic: str, order_id: str, logs: list[Path]) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"deploy-smoke-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    try:
        deadline = time.monotonic() + EVENT_DEADLINE
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    event = json.loads(record.value)
                    if event.get("data", {}).get("order_id") == order_id:
                        note(f"{topic}: event {event['event_id']} for the order, partition {record.partition}")
                        return
    finally:
        consumer.close()
    raise SmokeFailed(f"no {topic} event for order {order_id} within {EVENT_DEADLINE:.0f}s", logs)
