"""API create and list figures through gunicorn (the project's own configuration)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import psycopg

from devstack.bench import http_load, wrk
from devstack.bench.stack import Stack
from devstack.procs import LOOPBACK, DevstackError, free_port, log_tail, wait_for_port

ORDERS = "/api/v1/orders/"
_COUNT_STATEMENTS = """
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
client = APIClient(SERVER_NAME="127.0.0.1")
client.credentials(HTTP_AUTHORIZATION="Token {token}")
body = {{"user_id": "count-1", "currency": "USD", "items": [{{"product_id": "p1", "quantity": 2, "price": "4.50"}}]}}
client.post("{path}", body, format="json")  # warm: first-request work is not per create
with CaptureQueriesContext(connection) as queries:
    response = client.post("{path}", body, format="json")
assert response.status_code == 201, response.content
print(len(queries.captured_queries))
"""


class PeakMemory:
    """Peak resident memory (MB) of a process tree, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                for index, proc in enumerate(procs):
                    name = "master" if index == 0 else f"worker-{index}"
                    mb = proc.memory_info().rss / 2**20
                    self.peak[name] = max(self.peak.get(name, 0.0), mb)
            except psutil.Error:
                continue

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the process tree has used so far."""
        total = 0.0
        for proc in [self.root, *self.root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
        return total

    def worker_cpu_seconds(self) -> dict[int, float]:
        """CPU seconds (user + system) each worker (a child of the master) has used so far, by pid."""
        return {proc.pid: proc.cpu_times().user + proc.cpu_times().system for proc in self.root.children()}

    def stop(self) -> float:
        """The largest single process's peak, in MB."""
        self._stop.set()
        self._thread.join()
        return max(self.peak.values(), default=0.0)


@contextmanager
def gunicorn(stack: Stack) -> Iterator[tuple[int, PeakMemory]]:
    port = free_port()
    # A metrics port of its own: the default 9100 may be taken by a make dev, chaos or smoke run.
    env = {
        **stack.env,
        "GUNICORN_BIND": f"{LOOPBACK}:{port}",
        "GUNICORN_MAX_REQUESTS": "0",
        "METRICS_PORT": str(free_port()),
    }
    log = (stack.folder / "gunicorn.log").open("wb")
    command = [str(Path(sys.executable).parent / "gunicorn"), "--config", "python:orders_project.gunicorn_conf"]
    child = subprocess.Popen(
        [*command, "--access-logfile", "/dev/null", "orders_project.wsgi"],
        cwd=stack.repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for_port(LOOPBACK, port, time.monotonic() + 60, lambda: child.poll() is None, "gunicorn")
        except DevstackError as exc:
            raise DevstackError(f"{exc}:\n{log_tail(stack.folder / 'gunicorn.log')}") from exc
        memory = PeakMemory(child.pid)
        yield port, memory
    finally:
        child.terminate()
        child.wait(30)
        log.close()


def token(stack: Stack) -> str:
    return stack.manage("create_api_token", "bench", "--service").strip().splitlines()[-1].split()[-1]


# {n} is the request's number modulo 1000: creates spread over 1,000 customers.
_CREATE_BODY = json.dumps(
    {"user_id": "bench-{n}", "currency": "USD", "items": [{"product_id": "p1", "quantity": 2, "price": "4.50"}]}
)


def load(
    port: int,
    *,
    method: str,
    path: str,
    connections: int,
    seconds: float,
    headers: dict[str, str],
    body: str = "",
    spread: int = 1000,
) -> dict[str, Any]:
    """Requests/s and latency percentiles of `connections` keep-alive clients for `seconds`;
    `{n}` in path and body is the request's number modulo `spread`. wrk when installed (it
    leaves the servers more of the 2 cores), else the Python client; the result names which."""
    if wrk.available():
        result = wrk.run(
            url=f"http://{LOOPBACK}:{port}", method=method, path=path, connections=connections,
            seconds=seconds, headers=headers, body=body, spread=spread,
        )  # fmt: skip
        if result["status_errors"] or result["socket_errors"]:
            raise RuntimeError(f"{method} {path}: errors in wrk's run: {result}")
        return {**{key: result[key] for key in ("requests", "rps", "p50_ms", "p95_ms", "p99_ms")}, "client": "wrk"}
    answer = http_load.run(
        host=LOOPBACK, port=port, method=method, connections=connections, seconds=seconds, headers=dict(headers),
        paths=lambda n: path.replace("{n}", str(n % spread)),
        bodies=(lambda n: body.replace("{n}", str(n % spread)).encode()) if body else None,
    )  # fmt: skip
    summary = _summary(answer, expect=201 if method == "POST" else 200)
    return {"requests": answer.requests, **summary, "client": "python"}


def create_figures(stack: Stack, *, seconds: float, connections: list[int]) -> dict[str, Any]:
    """API creates/s at each connection count, the bare loop in as many processes as workers,
    the statements of one create, gunicorn's peak memory."""
    key = token(stack)
    statements = int(stack.manage("shell", "-c", _COUNT_STATEMENTS.format(token=key, path=ORDERS)).split()[-1])
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
    figures: dict[str, Any] = {"statements_per_create": statements}
    with gunicorn(stack) as (port, memory):
        load(port, method="POST", path=ORDERS, connections=4, seconds=1.0, headers=headers, body=_CREATE_BODY)  # warm
        for count in connections:
            cpu_before, workers_before = memory.cpu_seconds(), memory.worker_cpu_seconds()
            figures[f"c{count}"] = load(
                port, method="POST", path=ORDERS, connections=count, seconds=seconds, headers=headers, body=_CREATE_BODY
            )
            # gunicorn's CPU per create: unlike requests/s it hardly moves with what else the machine runs.
            served = max(1, figures[f"c{count}"]["requests"])
            figures[f"c{count}"]["web_cpu_ms"] = round((memory.cpu_seconds() - cpu_before) / served * 1000, 2)
            # The busiest worker's share of the workers' CPU: ~50 % with two workers sharing the
            # connections, 100 % when one accepted them all (the other idles; half the rate).
            spent = [cpu - workers_before.get(pid, 0.0) for pid, cpu in memory.worker_cpu_seconds().items()]
            figures[f"c{count}"]["busiest_worker_pct"] = round(max(spent, default=0.0) / max(sum(spent), 1e-9) * 100)
        figures["floors"] = _floors(stack, port, memory, seconds=seconds, headers=headers)
        figures["web_peak_mb"] = round(memory.stop(), 1)
    # gunicorn_conf's defaults, unless the environment sets them (the rows name what ran).
    workers = int(stack.env.get("GUNICORN_WORKERS", "2"))
    figures["gunicorn"] = {"workers": workers, "threads": int(stack.env.get("GUNICORN_THREADS", "4"))}
    bare = [
        subprocess.Popen(
            [sys.executable, "-m", "devstack.bench.bare", "create", stack.dsn, str(seconds)],
            cwd=stack.repo,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    runs = [proc.communicate()[0].split() for proc in bare]
    transactions, cpu = sum(int(run[0]) for run in runs), sum(float(run[1]) for run in runs)
    figures["bare_tps"] = round(transactions / seconds, 1)
    # The bare loop's client CPU per transaction: the yardstick for gunicorn's CPU per create
    # (a ratio of two CPU figures from the same minutes moves less with the machine than either).
    figures["bare_cpu_ms"] = round(cpu / max(1, transactions) * 1000, 3)
    for count in connections:
        figures[f"c{count}"]["web_cpu_ratio"] = round(figures[f"c{count}"]["web_cpu_ms"] / figures["bare_cpu_ms"], 1)
    return figures


# orders_project.health.LIVE_PATH: not imported, since this module runs without Django settings.
LIVE_PATH = "/api/v1/health/live"


def _floors(
    stack: Stack, port: int, memory: PeakMemory, *, seconds: float, headers: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """gunicorn's CPU per request, at 16 connections, for what every create pays before its own
    work: the live probe (gunicorn, WSGI and the first middleware, which answers it) and the GET
    of one order (every middleware, DRF, the token from the cache, one order's rows, the answer).
    A create's CPU cannot fall below the GET's by making its own work cheaper."""
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT id FROM orders_order LIMIT 1").fetchone()
    if row is None:
        raise RuntimeError("no order to read: the creates made none")
    floors: dict[str, dict[str, Any]] = {}
    for name, path, sent in (("live_probe", LIVE_PATH, {}), ("order_get", f"{ORDERS}{row[0]}/", headers)):
        cpu_before = memory.cpu_seconds()
        floors[name] = load(port, method="GET", path=path, connections=16, seconds=seconds, headers=sent)
        served = max(1, floors[name]["requests"])
        floors[name]["web_cpu_ms"] = round((memory.cpu_seconds() - cpu_before) / served * 1000, 3)
    return floors


def _summary(result: http_load.LoadResult, *, expect: int) -> dict[str, float]:
    wrong = sum(count for status, count in result.statuses.items() if status != expect)
    if wrong:
        raise RuntimeError(f"{wrong} of {result.requests} answers were not {expect}: {result.statuses}")
    return {
        "rps": round(result.rate, 1),
        "p50_ms": round(result.percentile(50), 1),
        "p95_ms": round(result.percentile(95), 1),
        "p99_ms": round(result.percentile(99), 1),
    }


_DEEP_CURSOR = """
from orders.models import Order
from orders_project.api.pagination import cursor_encode
row = Order.objects.filter(status="pending").order_by("-created_at", "-id").values_list("created_at", "id")[{offset}]
print(cursor_encode(*row))
"""
_FILL = """
INSERT INTO orders_order (id, user_id, status, currency, total_amount, shipping_address, payment_id,
  tracking_number, carrier, cancel_reason, version, created_at, updated_at)
SELECT md5(n::text || %(seed)s)::uuid, 'user-' || (n %% %(customers)s),
  (ARRAY['pending','confirmed','shipped','cancelled'])[1 + n %% 4], 'USD', 9.00, '1 Bench Street',
  '', '', '', '', 1, now() - n * interval '1 second', now() - n * interval '1 second'
FROM generate_series(1, %(count)s) AS n;
INSERT INTO orders_orderitem (order_id, product_id, quantity, price)
SELECT id, 'p1', 2, 4.50 FROM orders_order;
ANALYZE orders_order; ANALYZE orders_orderitem;
"""


# At most this many customers, and each at least a page of orders: the customer's page then
# holds 100 orders at every size, and its p95 at 1,000,000 orders compares with the one at
# 10,000 (1,000 customers there had 10 orders each, a tenth of the page to render).
MOST_CUSTOMERS = 1000
PAGE = 100


def list_customers(orders: int) -> int:
    return max(1, min(MOST_CUSTOMERS, orders // PAGE))


def fill(stack: Stack, count: int) -> float:
    """`count` orders (`list_customers(count)` customers, user-0, user-1, ...; four statuses)
    with one item each, by INSERT ... SELECT generate_series into the real tables. Returns seconds."""
    started = time.monotonic()
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        for statement in _FILL.split(";"):
            if statement.strip():
                conn.execute(statement, {"seed": "bench", "count": count, "customers": list_customers(count)})
    return time.monotonic() - started


def list_figures(stack: Stack, *, orders: int, seconds: float, connections: int) -> dict[str, Any]:
    """p95 (and requests/s) of list pages of 100: all orders, one customer's (each has a full page), one
    status's first page, and a deep page of that status (by keyset cursor, half way down)."""
    fill_seconds = fill(stack, orders)
    # The API's own cursor of the pending order half way down its list (orders_project.api.pagination).
    deep = stack.manage("shell", "-c", _DEEP_CURSOR.format(offset=orders // 8)).split()[-1]
    pages = {
        "all": f"{ORDERS}?limit={PAGE}",
        "user": f"{ORDERS}?limit={PAGE}&user_id=user-{{n}}",
        "status": f"{ORDERS}?limit={PAGE}&status=pending",
        "status_deep": f"{ORDERS}?limit={PAGE}&status=pending&cursor={deep}",
    }
    key = token(stack)
    figures: dict[str, Any] = {"orders": orders, "fill_seconds": round(fill_seconds, 1)}
    with gunicorn(stack) as (port, memory):
        for name, path in pages.items():
            cpu_before = memory.cpu_seconds()
            figures[name] = load(
                port, method="GET", path=path, connections=connections, seconds=seconds,
                headers={"Authorization": f"Token {key}"}, spread=list_customers(orders),  # the user page's {n}
            )  # fmt: skip
            served = max(1, figures[name]["requests"])
            figures[name]["web_cpu_ms"] = round((memory.cpu_seconds() - cpu_before) / served * 1000, 2)
        memory.stop()
    return figures
