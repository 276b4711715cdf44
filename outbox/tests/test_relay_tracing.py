"""The trace id of a request reaches Kafka and the relay's log: an order created with the
client's traceparent is relayed by a real Celery worker (production settings, JSON logs,
tracing off), its Kafka message carries a traceparent of that trace, and the worker's JSON
log line for that event (DEBUG: a line per event is too many at INFO) names the event and the
same trace id; at INFO the run's line says what was sent."""

import json
from typing import Any

import pytest

from outbox.models import OutboxEvent
from outbox.tasks import relay_outbox
from tests.support.api import service_client
from tests.support.outbox import consume, topic_ensure
from tests.support.processes import BIN, service_env, service_process
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.processes, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

CLIENT_TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4736"
ORDER = {"user_id": "user-trace-2", "currency": "EUR", "items": [{"product_id": "p1", "quantity": 1, "price": "5.00"}]}
LOG_KEYS = {"time", "level", "logger", "message", "trace_id", "span_id", "request_id"}
WORKER = [str(BIN / "celery"), "-A", "orders_project", "worker", "--loglevel", "INFO"]
WORKER += ["--without-mingle", "--without-gossip"]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_trace_id_of_a_request_is_in_the_kafka_headers_and_in_the_relays_log_line_for_that_event(
    tmp_path, kafka_bootstrap
):
    # given the real order.created topic and a worker running as in production (JSON logs)
    topic_ensure("order.created")
    (tmp_path / "prometheus").mkdir()  # the prefork worker's metrics directory
    env = service_env(
        CELERY_WORKER_CONCURRENCY="1",
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
    )
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    with service_process(WORKER, env, tmp_path / "worker.log") as worker:
        # when an order is created with the client's trace context, and the relay runs in the worker
        traceparent = f"00-{CLIENT_TRACE_ID}-00f067aa0ba902b7-01"
        response = service_client("trace-client").post(
            "/api/v1/orders/", ORDER, format="json", HTTP_TRACEPARENT=traceparent
        )
        assert response.status_code == 201
        event = OutboxEvent.objects.get()
        relay_outbox.apply_async()

        def relay_line() -> dict[str, Any] | None:
            assert worker.alive(), worker.log()[-3000:]
            lines = json_lines(worker.log())
            return next((line for line in lines if line.get("event_id") == str(event.event_id)), None)

        line = wait_for(relay_line, "the worker's log line for the event")

    # then the Kafka message carries the request's traceparent (the client's trace)
    (message,) = [m for m in consume("order.created", [str(event.event_id)]) if m.event_id == str(event.event_id)]
    assert message.headers["traceparent"] == response["traceparent"]
    assert message.headers["traceparent"].split("-")[1] == CLIENT_TRACE_ID

    # and the relay's line for that event names it, its order and that trace
    assert line["logger"] == "outbox.relay"
    assert line["level"] == "DEBUG"
    assert line["trace_id"] == CLIENT_TRACE_ID
    assert line["order_id"] == response.json()["id"]
    assert line["message"].startswith(f"Sent order.created {event.event_id} to order.created[{message.partition}]")
    # (its own span: a child of the request's, not the request's span itself)
    assert line["span_id"] != response["traceparent"].split("-")[2]

    # and the run's INFO line counts it
    lines = json_lines(worker.log())
    assert any(
        each["logger"] == "outbox.relay"
        and each["level"] == "INFO"
        and each["message"].startswith("Outbox relay: 1 published")
        for each in lines
    )

    # and every JSON line of the worker has the keys, and Celery's per-task lines are off by default
    assert all(set(each) >= LOG_KEYS for each in lines)
    assert not [each for each in lines if each["logger"] in ("celery.worker.strategy", "celery.app.trace")]
