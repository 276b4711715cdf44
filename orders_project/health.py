"""Liveness and readiness endpoints for probes and load balancers.

    GET /api/v1/health/live    200 while the process answers; checks nothing else
    GET /api/v1/health/ready   200 when PostgreSQL, Redis and Kafka answer, else 503

`?checks=postgres,redis` limits readiness to the named checks: the web pods
take orders without Kafka (the outbox keeps them), so the chart's readiness
probe leaves Kafka out and a Kafka outage does not take the API down.

They are answered by a middleware placed before everything else, because a
kubelet probe sends the pod's IP as Host, which ALLOWED_HOSTS rightly
refuses, and because the HTTPS redirect must not apply to plain-HTTP probes.
No authentication; the body names each check and the error's class, never a
host name, address or message that could leak configuration.
"""

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
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
# Each check gets this long; a probe's own timeout (chart: 5 s) must be longer.
CHECK_TIMEOUT_SECONDS = 2.0


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


def _timed(check: Callable[[], None]) -> float:
    started = time.monotonic()
    check()
    return time.monotonic() - started


def checks_run(names: list[str]) -> dict[str, dict[str, Any]]:
    """Run the named checks concurrently; each result is {"ok": bool, "ms": int} or {"ok": False, "error": ...}."""
    executor = ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="health")
    futures: dict[str, Future[float]] = {name: executor.submit(_timed, CHECKS[name]) for name in names}
    wait(futures.values(), timeout=CHECK_TIMEOUT_SECONDS)
    # A check still running is abandoned, not waited for: the probe must answer in time.
    executor.shutdown(wait=False, cancel_futures=True)
    results: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = {"ok": False, "error": "timeout"}
        elif future.exception() is not None:
            error = type(future.exception()).__name__
            logger.warning("Readiness check %s failed: %r", name, future.exception())
            results[name] = {"ok": False, "error": error}
        else:
            results[name] = {"ok": True, "ms": round(future.result() * 1000)}
    return results


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
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503)


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
