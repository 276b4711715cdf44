"""A stand-in for an OpenTelemetry collector: accepts OTLP/HTTP protobuf trace exports and keeps the spans.

Dev and test only (the tracing tests and `python -m devstack.bench api-tracing`): it answers every
POST to /v1/traces with an empty ExportTraceServiceResponse, as a collector does, and
decodes the body so a test can ask which spans arrived.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from devstack.procs import LOOPBACK


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    service: str


class OtlpSink:
    """Started on a free loopback port; `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT should say.

    With decode=False it only counts posts and bytes (a benchmark's collector)."""

    def __init__(self, decode: bool = True) -> None:
        self.decode = decode
        self.posts = 0
        self.spans: list[ReceivedSpan] = []
        self.span_count = 0
        self.bytes = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                sink._received(self.path, body)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: a benchmark posts many batches

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-sink", daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def _received(self, path: str, body: bytes) -> None:
        if not self.decode:  # a benchmark's sink: parsing would take CPU from the server measured
            with self._lock:
                self.posts += 1
                self.bytes += len(body)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        count = 0
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), ""
            )
            for scope_spans in resource_spans.scope_spans:
                count += len(scope_spans.spans)
                for span in scope_spans.spans:
                    spans.append(
                        ReceivedSpan(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            service=service,
                        )
                    )
        with self._lock:
            self.posts += 1
            self.span_count += count
            self.spans.extend(spans)

    def spans_of(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
