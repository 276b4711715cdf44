"""The trace context of a request, in-process: traceparent and X-Request-Id on every response,
continued when the client sent one, new and valid when it did not; no exporter without an
OTLP endpoint; log lines carry the ids."""

import json
import logging
import re

import pytest
from opentelemetry import trace

from orders_project import tracing
from orders_project.logs import ContextFilter, JsonFormatter
from tests.support.api import service_client

W3C = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]")
CLIENT_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ORDER = {"user_id": "user-trace-1", "currency": "USD", "items": [{"product_id": "p1", "quantity": 1, "price": "5.00"}]}


@pytest.fixture
def api_client():
    return service_client("tracing-client")


@pytest.mark.django_db
def test_a_request_with_a_traceparent_is_continued_and_answered_with_it_and_its_request_id(api_client):
    # when a client sends its trace context and a request id
    response = api_client.post(
        "/api/v1/orders/", ORDER, format="json", HTTP_TRACEPARENT=CLIENT_TRACEPARENT, HTTP_X_REQUEST_ID="req-42.a:b"
    )

    # then the answer continues the client's trace in a span of its own, and keeps its request id
    assert response.status_code == 201
    match = W3C.fullmatch(response["traceparent"])
    assert match is not None
    assert match.group(1) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert match.group(2) != "00f067aa0ba902b7"
    assert response["X-Request-Id"] == "req-42.a:b"


@pytest.mark.parametrize(
    ("traceparent", "request_id"),
    [
        (None, None),
        ("not-a-traceparent", "has spaces"),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "x" * 129),  # all-zero trace id is invalid
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "bad\u00e9"),
    ],
)
@pytest.mark.django_db
def test_a_request_without_a_valid_traceparent_gets_a_new_valid_one_and_a_new_request_id(
    api_client, traceparent, request_id
):
    headers = {}
    if traceparent is not None:
        headers["HTTP_TRACEPARENT"] = traceparent
    if request_id is not None:
        headers["HTTP_X_REQUEST_ID"] = request_id

    first = api_client.get("/api/v1/orders/", **headers)
    second = api_client.get("/api/v1/orders/", **headers)

    # then each answer starts a trace of its own with a valid context, and gets a fresh request id
    assert first.status_code == second.status_code == 200
    ids = [W3C.fullmatch(response["traceparent"]) for response in (first, second)]
    assert all(ids)
    assert ids[0].group(1) != ids[1].group(1)  # type: ignore[union-attr]
    assert ids[0].group(1) != "0" * 32  # type: ignore[union-attr]
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-Id"])
    assert first["X-Request-Id"] != second["X-Request-Id"]


@pytest.mark.django_db
def test_errors_outside_the_api_carry_the_ids_too(client):
    # a refused Host is answered by Django's own 400 handling, still inside the middleware
    response = client.get("/api/v1/orders/", HTTP_HOST="evil.example", HTTP_TRACEPARENT=CLIENT_TRACEPARENT)

    assert response.status_code == 400
    assert response["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert response["X-Request-Id"]


def test_without_an_otlp_endpoint_no_tracer_provider_processor_or_exporter_is_installed(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)

    assert tracing.tracing_setup("web") is False

    # the global provider is still the API's placeholder: no SDK, so no processor and no exporter
    from opentelemetry.sdk.trace import TracerProvider

    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert tracing._provider is None
    # and a span made anyway is non-recording, with valid ids in the parent's trace
    with tracing.span("work", traceparent=CLIENT_TRACEPARENT) as span:
        assert not span.is_recording()
        assert tracing.traceparent_current() == tracing.traceparent_of(span.get_span_context())
    assert span.get_span_context().trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert tracing.traceparent_current() is None


def test_a_json_log_line_has_the_ids_of_its_span_and_no_credentials():
    record = logging.LogRecord("outbox.relay", logging.INFO, __file__, 1, "Sent %s", ("x",), None)
    record.event_id = "e-1"
    with tracing.span("work", traceparent=CLIENT_TRACEPARENT):
        ContextFilter().filter(record)
    record.msg = "Sent %s with Authorization: Token 0123456789abcdef and password=hunter2"

    line = json.loads(JsonFormatter().format(record))

    assert set(line) == {"time", "level", "logger", "message", "trace_id", "span_id", "request_id", "event_id"}
    assert (line["level"], line["logger"], line["event_id"]) == ("INFO", "outbox.relay", "e-1")
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert re.fullmatch(r"[0-9a-f]{16}", line["span_id"])
    assert line["request_id"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert "0123456789abcdef" not in line["message"]
    assert "hunter2" not in line["message"]


@pytest.mark.parametrize(
    "traceparent",
    [
        CLIENT_TRACEPARENT + "-" + " " * 10_000 + "\nx",  # the propagator's regex: quadratic in the spaces
        CLIENT_TRACEPARENT + "\n",
        CLIENT_TRACEPARENT + "-" + "x" * 10_000,
    ],
    ids=["spaces-then-line-break", "line-break", "long"],
)
def test_a_hostile_traceparent_is_refused_before_the_propagators_regex_sees_it(monkeypatch, traceparent):
    # as a user event's Kafka header could carry it (HTTP servers refuse line breaks in headers)
    seen = []
    monkeypatch.setattr(tracing._propagator, "extract", lambda carrier: seen.append(carrier))

    assert tracing.parent_context(traceparent) is None
    assert seen == []


def test_a_traceparent_of_a_later_version_with_more_fields_is_still_read():
    context = tracing.parent_context("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")

    assert context is not None
    assert trace.get_current_span(context).get_span_context().trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
