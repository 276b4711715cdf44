"""Every response names its trace and its request: `traceparent` and `X-Request-Id`.

* traceparent: the W3C context of this request's server span. A valid incoming
  `traceparent` is continued (same trace id, this request's own span id); without one
  a new trace starts. With tracing on, the span is the Django instrumentation's (it
  runs first and extracted the header); with tracing off it is a non-recording span
  made here (orders_project.tracing), so the ids exist either way.
* X-Request-Id: a valid incoming one (1-128 characters of letters, digits and
  `._:-`, so it is safe to log) is kept, otherwise a new one is made.

Both go into every log line written while the request runs (orders_project.logs), and
the span's traceparent is what the outbox stores with the request's events.
"""

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from orders_project import tracing
from orders_project.logs import request_id_var

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(value: str | None) -> str:
    """The client's request id when it is safe to keep, else a new one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class TraceContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        try:
            server_span = trace.get_current_span()
            if server_span.get_span_context().is_valid:  # the Django instrumentation's span (tracing on)
                if server_span.is_recording():
                    server_span.set_attribute("http.request.id", request_id)
                response = self.get_response(request)
            else:
                name = f"{request.method} {request.path_info}"
                traceparent = request.headers.get("traceparent")
                with tracing.span(name, traceparent=traceparent, kind=SpanKind.SERVER) as server_span:
                    response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        span_context = server_span.get_span_context()
        response["traceparent"] = tracing.traceparent_of(span_context)
        response[REQUEST_ID_HEADER] = request_id
        # For django.request's line about this response, written after the middleware returned.
        request.log_ids = (f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}", request_id)  # type: ignore[attr-defined]
        return response
