"""gunicorn configuration for the web process: the production command is

    gunicorn --config python:orders_project.gunicorn_conf orders_project.wsgi

Every value can be set from the environment (names below, defaults in
docs/configuration.md); a malformed one stops gunicorn at start-up
naming the variable, like the Django settings do.

Why these defaults:
- 2 workers x 4 threads (gthread): on 2 cores two processes keep both busy,
  and threads overlap the waits on PostgreSQL and Redis. Each thread holds its
  own database connection, so a pod uses workers x threads connections.
- the workers are gthread workers that leave a new connection to a sibling
  holding fewer (orders_project/gunicorn_worker.py): with gunicorn's own, a
  burst of keep-alive connections could all land on one worker, leaving a core
  idle for as long as they lived.
- timeout 30 s: a request stuck longer than that is killed and its worker
  replaced; the database statement timeout (POSTGRES_STATEMENT_TIMEOUT_MS,
  30 s) ends the query first.
- graceful_timeout 20 s: on SIGTERM workers finish the requests they have
  within 20 s, inside Kubernetes' default 30 s grace period (the chart's
  terminationGracePeriodSeconds), so no request is cut mid-way.
- max_requests 1000 with jitter 100: each worker is replaced after about a
  thousand requests (not all at once), so slow memory growth stays bounded.
- forwarded headers (X-Forwarded-For/-Proto) are trusted only from
  FORWARDED_ALLOW_IPS (gunicorn reads that variable itself; default
  127.0.0.1,::1; the app reads the same list for client addresses,
  orders_project/client_ip.py): set it to the ingress controller's addresses,
  never "*" on a port clients can reach directly.
"""

import os
import shutil
import tempfile
from typing import Any

# Metrics of several workers (orders_project/metrics.py): prometheus_client's
# multiprocess mode, chosen when it is first imported, so before anything below
# imports it. The chart sets PROMETHEUS_MULTIPROC_DIR (/tmp/prometheus); without it,
# a private folder is made here and removed on exit.
_PRIVATE_METRICS_DIR = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _PRIVATE_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="orders-web-metrics-")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from orders_project.env import env_int, env_str  # noqa: E402
from orders_project.metrics import (  # noqa: E402
    metrics_serve,
    multiprocess_dir_reset,
    multiprocess_process_exited,
    multiprocess_registry,
)

# This module is imported once, by the master, before it loads the app (preload_app)
# and forks: the right moment to drop a previous run's metric files (a restarted
# container keeps its /tmp emptyDir, and their counters would add up with ours).
multiprocess_dir_reset(os.environ["PROMETHEUS_MULTIPROC_DIR"])

try:
    bind = [env_str("GUNICORN_BIND", "0.0.0.0:8000")]
    workers = env_int("GUNICORN_WORKERS", 2, minimum=1)
    threads = env_int("GUNICORN_THREADS", 4, minimum=1)
    timeout = env_int("GUNICORN_TIMEOUT", 30, minimum=1)
    graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 20, minimum=1)
    keepalive = env_int("GUNICORN_KEEPALIVE", 5, minimum=0)
    max_requests = env_int("GUNICORN_MAX_REQUESTS", 1000, minimum=0)
    max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", 100, minimum=0)
except ImproperlyConfigured as exc:
    raise SystemExit(f"gunicorn: {exc}") from None

worker_class = "orders_project.gunicorn_worker.BalancedThreadWorker" if threads > 1 else "sync"
# Load the app once in the master: a broken setting fails the start, not every worker.
preload_app = True
# Access log to stdout beside the app's logs; the container runtime collects both.
accesslog = "-"
errorlog = "-"
# Heartbeat files of the workers on tmpfs-backed /dev/shm when it exists: a slow
# disk under /tmp would make healthy workers look stuck to the arbiter.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn's control socket (for `gunicornc`) lives under $HOME, which the image
# neither has nor could write (read-only root): without this, every start logs an
# error. Nothing here uses it; kubectl and signals manage the process.
control_socket_disable = True
# Start-up, worker and access lines in the app's format (JSON in production), the access
# line as fields without the query string or any header: orders_project/gunicorn_logging.py.
logger_class = "orders_project.gunicorn_logging.GunicornLogger"


def post_fork(server: object, worker: object) -> None:
    # The span exporter's thread and HTTP connection belong to one process: each worker
    # starts its own (a no-op unless OTEL_EXPORTER_OTLP_ENDPOINT is set).
    from orders_project.tracing import tracing_start

    tracing_start("web")


def worker_exit(server: object, worker: object) -> None:
    from orders_project.tracing import tracing_flush

    tracing_flush()


def when_ready(server: Any) -> None:
    # The master serves /metrics on METRICS_PORT, adding up every worker's files: it
    # outlives the workers (max_requests replaces them) and is not busy with requests.
    try:
        metrics_serve("web", registry=multiprocess_registry())
    except ImproperlyConfigured as exc:
        raise SystemExit(f"gunicorn: {exc}") from None


def child_exit(server: Any, worker: Any) -> None:
    # A worker that exited stops counting in the live gauges; its counters stay (they add
    # up), folded into one archive file so replaced workers do not pile up files.
    multiprocess_process_exited(worker.pid)


def on_exit(server: Any) -> None:
    if _PRIVATE_METRICS_DIR is not None:
        shutil.rmtree(_PRIVATE_METRICS_DIR, ignore_errors=True)
