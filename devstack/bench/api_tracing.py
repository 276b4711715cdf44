"""python -m devstack.bench api-tracing [--seconds S] [--clients C] [--rounds R]: creates, tracing off and on.

Each phase starts gunicorn with the project's config (orders_project/gunicorn_conf.py:
2 workers x 4 threads by default) and production settings (DJANGO_DEBUG off, JSON logs
to a file) against the database and Redis this bench's environment names (e.g. after
`set -a; . .dev/env; set +a`), then C client threads, each on its own keep-alive
connection, POST orders for S seconds (after a short warm-up); requests/s, p50 and p99
of the answers are printed.

* off: OTEL_EXPORTER_OTLP_ENDPOINT unset (no TracerProvider, no exporter: the default).
* on: OTEL_EXPORTER_OTLP_ENDPOINT set to a collector stand-in served by this bench
  (devstack/otlp_sink.py: real OTLP/HTTP protobuf posts over loopback, answered 200 and
  counted, not parsed), so the BatchSpanProcessor really exports the server span and
  the SQL spans of every request (about 7 spans per create).

Phases alternate (off, on, off, on, ...) so a drift of the machine hits both. The
client runs on the same machine as the server (2 cores here): the figures compare the
two modes, they are not a capacity figure. Orders, events and the bench client it made
are deleted afterwards. Kafka is not needed: the create only writes the outbox.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from knox.models import AuthToken

from devstack.bench import BenchError, bench_parser
from devstack.django_env import servers_env
from devstack.otlp_sink import OtlpSink
from devstack.procs import LOOPBACK, free_port, port_accepts
from orders.models import Order
from outbox.models import OutboxEvent

HOST = "bench.invalid"
WARMUP_SECONDS = 2.0
SECRET_KEY = "bench-api-tracing-only-" + "k" * 40


def _server_env(port: int, endpoint: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        **servers_env(),
        "ORDER_REQUIRE_KNOWN_USER": "false",
        "API_THROTTLE_WRITE_RATE": "off",
        "GUNICORN_BIND": f"{LOOPBACK}:{port}",
        # The master's /metrics on a port of its own: the default 9100 may be taken here.
        "METRICS_PORT": str(free_port()),
        "LOG_FORMAT": "json",
    }
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(name, None)
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    return env


def _client_loop(port: int, token: str, body: bytes, until: float, latencies: list[float], errors: list[int]) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    headers = {"Host": HOST, "Authorization": f"Token {token}", "Content-Type": "application/json"}
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/orders/", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
                status = 0
            if status == 201:
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(status)
    finally:
        conn.close()


def _load(port: int, token: str, body: bytes, clients: int, seconds: float) -> tuple[list[float], list[int]]:
    latencies: list[float] = []
    errors: list[int] = []
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_client_loop, args=(port, token, body, until, latencies, errors))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def _parser() -> argparse.ArgumentParser:
    parser = bench_parser("api-tracing", __doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per phase")
    parser.add_argument("--clients", type=int, default=16, help="client threads (keep-alive connections)")
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs")
    return parser


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    TracingBench().run(seconds=args.seconds, clients=args.clients, rounds=args.rounds)


class TracingBench:
    def run(self, *, seconds: float, clients: int, rounds: int) -> None:
        run = uuid.uuid4().hex[:8]
        user_id = f"bench-trace-{run}"
        client = get_user_model().objects.create_user(username=f"bench-tracing-{run}", is_staff=True)
        _, token = AuthToken.objects.create(user=client)
        body = json.dumps(
            {"user_id": user_id, "currency": "EUR", "items": [{"product_id": "p1", "quantity": 2, "price": "4.50"}]}
        ).encode()
        results: dict[str, list[tuple[float, float, float, int, int]]] = {"off": [], "on": []}
        try:
            with tempfile.TemporaryDirectory(prefix="bench-tracing-") as logs:
                for round_number in range(rounds):
                    for mode in ("off", "on"):
                        figures = self._phase(
                            mode, token, body, clients, seconds, Path(logs) / f"{mode}{round_number}.log"
                        )
                        results[mode].append(figures)
                        rps, p50, p99, errors, spans = figures
                        print(
                            f"tracing {mode:3}: {rps:7.1f} req/s  p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms"
                            f"  errors {errors}" + (f"  OTLP posts {spans}" if mode == "on" else "")
                        )
        finally:
            Order.objects.filter(user_id=user_id).delete()
            OutboxEvent.objects.filter(key=user_id).delete()
            client.delete()
        for mode in ("off", "on"):
            rps = statistics.median(r[0] for r in results[mode])
            p50 = statistics.median(r[1] for r in results[mode])
            p99 = statistics.median(r[2] for r in results[mode])
            print(f"median tracing {mode:3}: {rps:7.1f} req/s  p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms")

    def _phase(
        self, mode: str, token: str, body: bytes, clients: int, seconds: float, log_path: Path
    ) -> tuple[float, float, float, int, int]:
        sink = OtlpSink(decode=False) if mode == "on" else None
        port = free_port()
        args = [sys.executable, "-m", "gunicorn", "--config", "python:orders_project.gunicorn_conf"]
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [*args, "orders_project.wsgi"],
                cwd=settings.BASE_DIR,
                env=_server_env(port, sink.endpoint if sink else None),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                while not port_accepts(LOOPBACK, port):
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise BenchError(f"gunicorn did not start; its log:\n{log_path.read_text()[-3000:]}")
                    time.sleep(0.1)
                _load(port, token, body, clients, WARMUP_SECONDS)
                latencies, errors = _load(port, token, body, clients, seconds)
            finally:
                server.terminate()
                server.wait(30)
        spans = 0
        if sink is not None:
            spans = sink.posts
            sink.close()
        if not latencies:
            raise BenchError(f"no request succeeded ({errors[:5]}...); gunicorn's log:\n{log_path.read_text()[-3000:]}")
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return len(latencies) / seconds, statistics.median(latencies), p99, len(errors), spans
