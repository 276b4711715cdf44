"""Liveness and readiness endpoints for probes and load balancers.

    GET /api/v1/health/live    200 while the process answers; checks nothing else
    GET /api/v1/health/ready   200 when PostgreSQL, Redis and Kafka answer, else 503

`?checks=postgres` limits readiness to the named checks. The chart's web
readiness probe asks for PostgreSQL alone: without Kafka the outbox keeps the
orders, and without Redis only creating an order fails (503 + Retry-After, the
user check cannot be made) while the throttles let requests through, so
neither outage may take every web pod out of the load balancer.

They are answered by a middleware placed before everything else, because a
kubelet probe sends the pod's IP as Host, which ALLOWED_HOSTS rightly
refuses, and because the HTTPS redirect must not apply to plain-HTTP probes.
So anyone who reaches a pod can call them, as often as they like, and a call
must cost next to nothing:

* each check's result is shared by every caller in the process for
  RESULT_TTL_SECONDS: a flood costs one PostgreSQL connection (one Kafka
  admin client...) per check per second per process, not one per call;
* callers that arrive while a check runs wait for that run (single flight),
  never start another, and wait at most until its deadline
  (CHECK_TIMEOUT_SECONDS after it started): a slow dependency holds one
  thread per check, however many probes arrive;
* only callers inside the cluster see the per-check detail (which check,
  the error's class, its time), unless HEALTH_DETAIL_PUBLIC is on; others
  get the status alone. Never a host name, address or message.
"""

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_redis import get_redis_connection

from orders_project.api.errors import error_body
from orders_project.kafka import broker_ping

logger = logging.getLogger(__name__)

LIVE_PATH = "/api/v1/health/live"
READY_PATH = "/api/v1/health/ready"
# A run of a check answers within this long or counts as "timeout"; a probe's
# own timeout (chart: 5 s) must be longer.
CHECK_TIMEOUT_SECONDS = 2.0
# A result is reused for this long: readiness is probed every few seconds, so a
# second of staleness changes nothing, and it caps what a flood of calls costs.
RESULT_TTL_SECONDS = 1.0
# Headers a proxy (the ingress) adds: a request carrying one came from outside the pod network.
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _check_postgres() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        # The check runs in a thread of its own: its connection must not outlive it.
        connections.close_all()


def _check_redis() -> None:
    # Every Redis the settings name (cache, user replica), which may be separate servers.
    for alias in settings.CACHES:
        get_redis_connection(alias).ping()


def _check_kafka() -> None:
    broker_ping(timeout_ms=int(CHECK_TIMEOUT_SECONDS * 1000))


CHECKS: dict[str, Callable[[], None]] = {
    "postgres": _check_postgres,
    "redis": _check_redis,
    "kafka": _check_kafka,
}


@dataclass
class _Run:
    """One run of one check; every caller that arrives while it runs (or while its result is fresh) shares it."""

    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] = field(default_factory=dict)
    finished: float = 0.0

    def outcome(self) -> dict[str, Any]:
        if self.done.wait(max(0.0, self.deadline - time.monotonic())):
            return self.result
        return {"ok": False, "error": "timeout"}


class SharedCheck:
    """A check run at most once per RESULT_TTL_SECONDS in this process, and never twice at once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._last: _Run | None = None

    def run(self) -> _Run:
        """The run whose outcome answers a caller arriving now: fresh, in flight, or started here."""
        with self._lock:
            last, now = self._last, time.monotonic()
            if last is not None and not (last.done.is_set() and now - last.finished >= RESULT_TTL_SECONDS):
                return last  # fresh, or still running (past its deadline it answers "timeout" at once)
            self._last = run = _Run(deadline=now + CHECK_TIMEOUT_SECONDS)
        threading.Thread(target=self._execute, args=(run,), name=f"health-{self.name}", daemon=True).start()
        return run

    def _execute(self, run: _Run) -> None:
        started = time.monotonic()
        try:
            CHECKS[self.name]()
            run.result = {"ok": True, "ms": round((time.monotonic() - started) * 1000)}
        except Exception as exc:
            logger.warning("Readiness check %s failed: %r", self.name, exc)
            run.result = {"ok": False, "error": type(exc).__name__}
        run.finished = time.monotonic()
        run.done.set()


def shared_checks() -> dict[str, SharedCheck]:
    return {name: SharedCheck(name) for name in CHECKS}


_SHARED = shared_checks()


def checks_run(names: list[str]) -> dict[str, dict[str, Any]]:
    """The named checks' results: {"ok": True, "ms": int} or {"ok": False, "error": kind}."""
    runs = {name: _SHARED[name].run() for name in names}  # all started before any is waited for
    return {name: run.outcome() for name, run in runs.items()}


def _detail_allowed(request: HttpRequest) -> bool:
    """Per-check detail for callers inside the cluster (a kubelet, a pod; no proxy in between)."""
    if settings.HEALTH_DETAIL_PUBLIC:
        return True
    if any(header in request.META for header in _PROXY_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return peer.is_private or peer.is_loopback


def live_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def ready_view(request: HttpRequest) -> JsonResponse:
    requested = request.GET.get("checks")
    names = [name.strip() for name in requested.split(",") if name.strip()] if requested else list(CHECKS)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown or not names:
        message = f"Unknown checks {unknown}; known: {sorted(CHECKS)}." if unknown else "No check named."
        return JsonResponse(error_body("validation_error", message), status=400)
    results = checks_run(list(dict.fromkeys(names)))
    ready = all(result["ok"] for result in results.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable"}
    if _detail_allowed(request):
        body["checks"] = results
    return JsonResponse(body, status=200 if ready else 503)


_VIEWS: dict[str, Callable[[HttpRequest], JsonResponse]] = {LIVE_PATH: live_view, READY_PATH: ready_view}


class HealthCheckMiddleware:
    """Answer the probe paths before host validation, redirects and sessions (first in MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _VIEWS.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(error_body("method_not_allowed", f'Method "{request.method}" not allowed.'))
            response.status_code = 405
            response["Allow"] = "GET, HEAD"
            return response
        response = view(request)
        response["Cache-Control"] = "no-store"
        return response
