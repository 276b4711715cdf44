"""gunicorn and the worker as in production: every log line is a JSON object with the ids and
no credential; with OTEL_EXPORTER_OTLP_ENDPOINT set, the spans of a request and of the relay
of its event reach an OTLP/HTTP collector (a stand-in served by the test) in one trace."""

import json
import urllib.request
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from devstack.otlp_sink import OtlpSink
from devstack.procs import LOOPBACK, free_port
from orders.tests.factories import grant, token_for
from outbox.kick import KICK_KEY
from tests.support.outbox import topic_ensure
from tests.support.processes import BIN, GUNICORN, HOST, answers, service_env, service_process
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

LOG_KEYS = {"time", "level", "logger", "message", "trace_id", "span_id", "request_id"}
TRACE_ID = "7bf92f3577b34da6a3ce929d0e0e4736"
ORDER = {"user_id": "user-trace-3", "currency": "EUR", "items": [{"product_id": "p1", "quantity": 1, "price": "5.00"}]}
SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER = 2, 3, 4


def _post(url: str, body: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", "Content-Type": "application/json", **headers}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _service_token() -> str:
    user = grant(get_user_model().objects.create_user(username="trace-service", password="x"), "act_for_any_customer")
    return token_for(user)


def test_gunicorn_writes_json_lines_with_the_ids_and_never_a_token_or_password(tmp_path):
    token = _service_token()
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    env = service_env(GUNICORN_BIND=f"{LOOPBACK}:{port}", GUNICORN_WORKERS="1")
    env.pop("LOG_FORMAT", None)  # production default: JSON
    with service_process(GUNICORN, env, tmp_path / "gunicorn.log") as web:
        wait_for(lambda: answers(f"{base}/api/v1/health/live") or not web.alive(), "gunicorn to answer")
        # a create with a token in the header, and a refused request with secrets in the query and body
        auth = {"Authorization": f"Token {token}"}
        created = _post(f"{base}/api/v1/orders/", ORDER, **auth, traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01")
        refused = _post(f"{base}/api/v1/orders/?token=query-secret-1", {"password": "body-secret-2"}, **auth)
        assert (created[0], refused[0]) == (201, 400)
        assert web.stop(timeout=25) == 0
        log = web.log()

    lines = [json.loads(line) for line in log.splitlines()]  # every line parses: nothing else is written
    assert all(set(line) >= LOG_KEYS for line in lines)
    for secret in (token, "query-secret-1", "body-secret-2", "Authorization"):
        assert secret not in log
    # the access line of the create names the request and its trace, without the query string
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    (create_access,) = [line for line in access if line["method"] == "POST" and line["status"] == 201]
    assert create_access["path"] == "/api/v1/orders/"
    assert create_access["request_id"] == created[1]["X-Request-Id"]
    assert create_access["trace_id"] == TRACE_ID
    (refused_access,) = [line for line in access if line["status"] == 400]
    assert refused_access["path"] == "/api/v1/orders/"
    assert refused_access["request_id"] == refused[1]["X-Request-Id"]
    # (Django's own line for the 400 is written after the middleware returned: it has the ids too)
    (bad_request,) = [line for line in lines if line["logger"] == "django.request"]
    assert (bad_request["request_id"], bad_request["trace_id"]) == (
        refused_access["request_id"],
        refused_access["trace_id"],
    )
    # and the app's line for the new order carries the order, request and trace ids
    order_id = json.loads(created[2])["id"]
    (order_line,) = [line for line in lines if line.get("order_id") == order_id]
    assert (order_line["request_id"], order_line["trace_id"]) == (created[1]["X-Request-Id"], TRACE_ID)


@pytest.mark.kafka
def test_with_an_otlp_endpoint_the_spans_of_a_request_and_of_its_relay_reach_the_collector(tmp_path, kafka_bootstrap):
    topic_ensure("order.created")
    token = _service_token()
    cache.delete(KICK_KEY)  # a marker left by an earlier test would swallow this request's relay kick
    sink = OtlpSink()
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    # Export every 100 ms instead of 5 s, so the test does not wait.
    tracing_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    # Each process kind serves /metrics on a port of its own: two children need two.
    web_env = service_env(
        GUNICORN_BIND=f"{LOOPBACK}:{port}", GUNICORN_WORKERS="1", METRICS_PORT=str(free_port()), **tracing_env
    )
    (tmp_path / "prometheus").mkdir()  # the prefork worker's metrics directory
    worker_env = service_env(
        CELERY_WORKER_CONCURRENCY="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        METRICS_PORT=str(free_port()),
        **tracing_env,
    )
    worker_args = [str(BIN / "celery"), "-A", "orders_project", "worker", "--without-mingle", "--without-gossip"]
    try:
        with (
            service_process(GUNICORN, web_env, tmp_path / "gunicorn.log") as web,
            service_process(worker_args, worker_env, tmp_path / "worker.log") as worker,
        ):
            wait_for(lambda: answers(f"{base}/api/v1/health/live") or not web.alive(), "gunicorn to answer")
            # when an order is created with the client's trace context (its commit kicks the relay)
            status, headers, _ = _post(
                f"{base}/api/v1/orders/",
                ORDER,
                Authorization=f"Token {token}",
                traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01",
            )
            assert status == 201

            # then the request's server span, its SQL and the relay's producer span arrive in that trace
            def kinds() -> set[int] | None:
                assert web.alive() and worker.alive()
                found = {span.kind for span in sink.spans_of(TRACE_ID)}
                return found if {SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER} <= found else None

            wait_for(kinds, "server, database and producer spans of the request's trace")
    finally:
        sink.close()
    spans = sink.spans_of(TRACE_ID)
    (server,) = [span for span in spans if span.kind == SPAN_KIND_SERVER]
    (producer,) = [span for span in spans if span.kind == SPAN_KIND_PRODUCER]
    assert server.parent_span_id == "00f067aa0ba902b7"  # the client's span
    assert headers["traceparent"] == f"00-{TRACE_ID}-{server.span_id}-01"
    assert producer.name == "order.created publish"
    assert producer.parent_span_id == server.span_id  # the relay continues the stored request span
    assert {span.service for span in spans} == {"order-service"}
