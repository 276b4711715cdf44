"""One trace id from a request to Kafka and on: W3C trace context always, spans exported only when asked.

Two modes, chosen per process by the environment:

* `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set: an SDK TracerProvider
  with a BatchSpanProcessor and the OTLP/HTTP exporter; Django, psycopg and Celery instrumented
  (`tracing_setup`, once per process kind); spans are exported. The exporter reads the other
  standard `OTEL_*` variables itself (headers, timeout, protocol details).
* unset: no TracerProvider, no span processor, no exporter, no instrumentation, so nothing is
  recorded and nothing slows down. The trace context still flows: `span_start` then gives a
  non-recording span with fresh ids (continuing its parent's trace id), so the response header,
  the outbox row, the Kafka header and every log line carry a valid traceparent either way.

Kafka spans are made here by hand (relay: one PRODUCER span per event, child of the traceparent
stored with its outbox row; consumer: one CONSUMER span per message, child of its header), not by
opentelemetry-instrumentation-kafka-python: that one hooks only `KafkaConsumer.__next__` (the
consumer uses `poll()`) and its `send` wrapper appends a second `traceparent` header beside the
one the event contract defines (docs/observability.md).
"""

import logging
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger(__name__)

SERVICE_NAME = "order-service"
# Probes and scrapes every few seconds would bury the traces that matter.
EXCLUDED_URLS = r"api/v1/health/.*,metrics"

_propagator = TraceContextTextMapPropagator()
# A traceparent is 55 characters (version 00; later versions may append fields). The
# propagator's regex ends in `(-.*)?[ \t]*$`, which backtracks quadratically when a line
# break follows a long run of spaces (0.4 s at 10 KB, 29 s at 100 KB, holding the GIL);
# a Kafka header can carry one. Anything longer than this, or with a line break, is not one.
_TRACEPARENT_MAX_LENGTH = 512
_provider: Any = None  # the SDK TracerProvider once tracing_start ran with an endpoint set
_tracer: trace.Tracer | None = None
_instrumented: set[str] = set()


def tracing_enabled() -> bool:
    """Whether this process exports spans: an OTLP endpoint is named and the SDK is not disabled."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(
        os.environ.get(name, "").strip()
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracing_instrument(kind: str) -> None:
    """Hook the libraries of a process kind ("web", "worker", "consumer"), if tracing is enabled.

    The web kind must run before Django builds its middleware chain (orders_project/wsgi.py):
    the Django instrumentation adds its middleware to settings.MIDDLEWARE. The hooks create
    spans through the global tracer provider, so they record only once `tracing_start` ran.
    """
    if not tracing_enabled() or kind in _instrumented:
        return
    _instrumented.add(kind)
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    if not PsycopgInstrumentor().is_instrumented_by_opentelemetry:
        # No SQL commenter: comments would make every statement text unique in pg_stat_statements.
        PsycopgInstrumentor().instrument(enable_commenter=False)
    if kind == "web":
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument(excluded_urls=EXCLUDED_URLS)
    if kind == "worker":
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument()


def tracing_start(kind: str) -> bool:
    """Install the TracerProvider, span processor and OTLP exporter in this process, if tracing is enabled.

    Call it in the process that makes the spans, after any fork: gunicorn's post_fork, Celery's
    worker_process_init, the consumer command. Returns whether tracing is on.
    """
    global _provider, _tracer
    if _provider is not None:
        return True
    if not tracing_enabled():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES; the attributes given here win over it.
    service = os.environ.get("OTEL_SERVICE_NAME", "").strip() or SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({"service.name": service, "process.kind": kind}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("orders_project")
    logger.info("Tracing on: spans of this %s process go to the OTLP endpoint", kind)
    return True


def tracing_setup(kind: str) -> bool:
    """Both steps, for a process that forks no more (a Celery pool process, the consumer)."""
    tracing_instrument(kind)
    return tracing_start(kind)


def tracing_flush(timeout_seconds: float = 5.0) -> None:
    """Export what is queued (before a process exits)."""
    if _provider is not None:
        _provider.force_flush(int(timeout_seconds * 1000))


def traceparent_of(span_context: SpanContext) -> str:
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def parent_context(traceparent: str | None) -> otel_context.Context | None:
    """The context a valid W3C traceparent names (as a remote parent), or None."""
    if not traceparent or len(traceparent) > _TRACEPARENT_MAX_LENGTH or "\n" in traceparent:
        return None
    extracted = _propagator.extract({"traceparent": traceparent})
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None


def traceparent_current() -> str | None:
    """The traceparent of the current span, or None outside any span."""
    span_context = trace.get_current_span().get_span_context()
    return traceparent_of(span_context) if span_context.is_valid else None


def _random_bits(bits: int) -> int:
    # Same source as the SDK's RandomIdGenerator; zero is the invalid id.
    return random.getrandbits(bits) or 1


def span_start(
    name: str,
    *,
    traceparent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    links: Sequence[Link] = (),
) -> Span:
    """Start a span (not made current): child of `traceparent` when it is valid, else of the current span.

    Without tracing it is a non-recording span with a new span id in its parent's trace (a new
    trace without a parent), so ids still go to headers and logs; ending it costs nothing.
    """
    parent = parent_context(traceparent)
    if _tracer is not None:
        return _tracer.start_span(name, context=parent, kind=kind, attributes=attributes, links=links)
    parent_span = trace.get_current_span(parent).get_span_context()
    if parent_span.is_valid:
        trace_id, flags = parent_span.trace_id, parent_span.trace_flags
    else:
        trace_id, flags = _random_bits(128), TraceFlags(TraceFlags.SAMPLED)
    return NonRecordingSpan(SpanContext(trace_id, _random_bits(64), is_remote=False, trace_flags=flags))


@contextmanager
def span(
    name: str,
    *,
    traceparent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """`span_start`, made current for the block and ended after it (an exception is recorded)."""
    with trace.use_span(
        span_start(name, traceparent=traceparent, kind=kind, attributes=attributes), end_on_exit=True
    ) as current:
        yield current
