"""Every process kind serves /metrics on its own port, and the counters move with real work.

One scenario runs once for the module, with the production commands as child processes
(gunicorn with two workers, the prefork Celery worker, beat, the user-event consumer)
against the test servers: a user event is consumed twice (the second a redelivery), two
orders are created through gunicorn (one by each worker), the relay publishes them and
the lifecycle confirms them. Then each process is scraped on its metrics port, and the
tests below check what each scrape says; the last one checks that every metric the
chart's dashboard and alerts query is one of the names the processes exposed.
"""

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from kafka import KafkaProducer
from prometheus_client.multiprocess import MultiProcessCollector

from devstack.deploy.chart import CHART_DIR, DEFAULT_VALUES_FILE, chart_render, find
from devstack.procs import LOOPBACK, free_port
from orders.services import CUSTOMER_LOCK_NAMESPACE
from orders.tests.factories import grant, token_for
from tests.support.outbox import topic_ensure
from tests.support.processes import BIN, ServiceProcess, service_env
from tests.support.scraping import Scrape, promql_metric_names, scrape
from tests.support.users import created
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.processes, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

GUNICORN = [str(BIN / "gunicorn"), "--config", "python:orders_project.gunicorn_conf", "orders_project.wsgi"]
WORKER = [str(BIN / "celery"), "-A", "orders_project", "worker", "--loglevel", "INFO", "--without-mingle"]
WORKER += ["--without-gossip"]
BEAT = [str(BIN / "celery"), "-A", "orders_project", "beat", "--loglevel", "INFO", "--pidfile="]
CONSUMER = [sys.executable, "manage.py", "consume_user_events", "--session-timeout-ms", "6000"]
HOST = "orders.example.com"
# Names Prometheus makes itself (not exposed by any process).
PROMETHEUS_NAMES = {"up"}


@dataclass
class Scenario:
    scrapes: dict[str, Scrape]
    topics: dict[str, str]
    users: list[str]
    web_master_pid: int
    web_per_process: dict[int, Scrape]  # the web's files, one per process
    public_metrics_status: int


def _request(port: int, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}{path}",
        data=data,
        method=method,
        headers={"Host": HOST, "X-Forwarded-Proto": "https", "Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _per_process(directory: Path) -> dict[int, Scrape]:
    """The counters of each web process, read from its own file (counter_<pid>.db)."""
    result = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        families = MultiProcessCollector.merge([str(path)])
        result[pid] = Scrape([(s.name, dict(s.labels), s.value) for family in families for s in family.samples])
    return result


def _orders_by_each_web_worker(port: int, token: str, users: list[str]) -> None:
    """Two orders, one served by each of the two (sync) workers, whatever the kernel prefers.

    The test holds the first customer's advisory lock (the one order_create takes), so the
    worker that takes that customer's order waits inside it; the second customer's order
    can then only go to the other worker. Releasing the lock lets the first one finish.
    """
    auth = {"Authorization": f"Token {token}"}
    body = {"currency": "USD", "items": [{"product_id": "prod-1", "quantity": 2, "price": "9.99"}]}
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        password=database["PASSWORD"],
        dbname=database["NAME"],
        autocommit=True,
    ) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [CUSTOMER_LOCK_NAMESPACE, users[0]])
        results: list[int] = []
        first = threading.Thread(
            target=lambda: results.append(
                _request(port, "POST", "/api/v1/orders/", {**body, "user_id": users[0]}, **auth)[0]
            )
        )
        first.start()

        def waiting() -> bool:
            row = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()
            return bool(row and row[0])

        wait_for(waiting, "the first order to wait for its customer's lock in one worker")
        second = _request(port, "POST", "/api/v1/orders/", {**body, "user_id": users[1]}, **auth)
        holder.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [CUSTOMER_LOCK_NAMESPACE, users[0]])
        first.join(30)
    assert (results, second[0]) == ([201], 201), second


@pytest.fixture(scope="module")
def scenario(
    django_db_setup: Any, django_db_blocker: Any, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("process-metrics")
    suffix = uuid.uuid4().hex[:8]
    topics = {
        name: f"metrics.{name}.{suffix}"
        for name in ("order.created", "order.confirmed", "order.shipped", "order.cancelled", "user.created")
    }
    users = [f"metrics-user-{suffix}-{n}" for n in (1, 2)]
    broker_db = (settings.REDIS_DB + 3) % 16  # the Celery queue of this scenario only, emptied afterwards
    broker_url = f"redis://{settings.REDIS_HOST}:{settings.REDIS_PORT}/{broker_db}"
    ports = {kind: free_port() for kind in ("web", "web-metrics", "worker", "beat", "consumer")}
    common = {
        **{f"KAFKA_TOPIC_{name.upper().replace('.', '_')}": topic for name, topic in topics.items()},
        "CELERY_BROKER_URL": broker_url,
        "ORDER_CONFIRM_DELAY": "0",
        "ORDER_REQUIRE_KNOWN_USER": "true",
    }
    envs = {
        "web": service_env(
            **common,
            GUNICORN_BIND=f"{LOOPBACK}:{ports['web']}",
            GUNICORN_WORKERS="2",
            GUNICORN_THREADS="1",  # sync workers: one request each, which the test relies on
            METRICS_PORT=str(ports["web-metrics"]),
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "web-prometheus"),
            POSTGRES_LOCK_TIMEOUT_MS="0",  # the first order waits for the test's lock as long as it takes
        ),
        "worker": service_env(
            **common,
            METRICS_PORT=str(ports["worker"]),
            PROMETHEUS_MULTIPROC_DIR=str(tmp / "worker-prometheus"),
            CELERY_WORKER_CONCURRENCY="2",
        ),
        "beat": service_env(**common, METRICS_PORT=str(ports["beat"]), ORDER_PROCESSOR_INTERVAL="1"),
        "consumer": service_env(
            **common, METRICS_PORT=str(ports["consumer"]), KAFKA_CONSUMER_GROUP_ID=f"metrics-{suffix}"
        ),
    }
    commands = {"web": GUNICORN, "worker": WORKER, "beat": BEAT, "consumer": CONSUMER}
    metrics_ports = {"web": ports["web-metrics"], "worker": ports["worker"], "beat": ports["beat"]}
    metrics_ports["consumer"] = ports["consumer"]
    processes: dict[str, ServiceProcess] = {}
    with django_db_blocker.unblock():
        for topic in topics.values():
            topic_ensure(topic)
        client = grant(get_user_model().objects.create_user(username=f"metrics-{suffix}"), "act_for_any_customer")
        token = token_for(client)
        try:
            for kind, command in commands.items():
                processes[kind] = ServiceProcess(command, envs[kind], tmp / f"{kind}.log")
            for kind, port in metrics_ports.items():
                process = processes[kind]
                wait_for(lambda: scrape(port) or not process.alive(), f"the {kind}'s /metrics")  # noqa: B023 (called now, in this iteration)
                assert process.alive(), process.log()[-3000:]

            # two users' events, then the first one again (a redelivery)
            now = dt.datetime.now(dt.UTC)
            events = [(user, created(user, now, event_id=str(uuid.uuid4()))) for user in users]
            producer = KafkaProducer(
                bootstrap_servers=kafka_bootstrap,
                request_timeout_ms=5000,
                delivery_timeout_ms=10_000,
                max_block_ms=10_000,
            )
            for user, event in [*events, events[0]]:
                producer.send(topics["user.created"], key=user.encode(), value=event).get(timeout=10)
            producer.close(5)
            wait_for(
                lambda: (scrape(ports["consumer"]) or Scrape()).value("kafka_events_consumed_total") == 3,
                "the consumer to handle the three messages",
            )

            # an order for each user through gunicorn, one per worker
            _orders_by_each_web_worker(ports["web"], token, users)

            # relayed, confirmed by the lifecycle (beat's tick), and the confirmations relayed
            def relayed() -> bool:
                worker = scrape(ports["worker"]) or Scrape()
                confirmed = worker.value(
                    "kafka_events_published_total", topic=topics["order.confirmed"], status="success"
                )
                return confirmed == 2 and worker.value("outbox_events_pending") == 0

            wait_for(relayed, "the worker to relay both orders' created and confirmed events")
            scrapes = {kind: scrape(port) for kind, port in metrics_ports.items()}
            public_status = _request(ports["web"], "GET", "/metrics")[0]
            yield Scenario(
                scrapes={kind: value for kind, value in scrapes.items() if value is not None},
                topics=topics,
                users=users,
                web_master_pid=processes["web"].popen.pid,
                web_per_process=_per_process(tmp / "web-prometheus"),
                public_metrics_status=public_status,
            )
        except BaseException:
            for kind, process in processes.items():
                print(f"--- log of the {kind} ---\n{process.log()[-3000:]}")
            raise
        finally:
            for process in processes.values():
                process.stop()
            redis.Redis.from_url(broker_url).flushdb()
            call_command("flush", interactive=False, verbosity=0)


def test_web_counters_of_both_gunicorn_workers_add_up(scenario):
    web = scenario.scrapes["web"]
    workers = {pid: process for pid, process in scenario.web_per_process.items() if pid != scenario.web_master_pid}

    # each worker created one order and answered one POST ...
    created = {pid: process.value("orders_created_total") for pid, process in workers.items()}
    assert sorted(created.values()) == [1.0, 1.0], created
    posts = [process.value("django_http_requests_total_by_method_total", method="POST") for process in workers.values()]
    assert posts == [1.0, 1.0]
    # ... and the master's /metrics adds them up
    assert web.value("orders_created_total") == 2
    assert web.value("django_http_requests_total_by_method_total", method="POST") == 2
    assert web.value("django_http_responses_total_by_status_total", status="201") == 2
    assert web.value("user_validation_total", result="valid") == 2
    # the latency histogram of the create endpoint saw both
    assert web.value("django_http_requests_latency_seconds_by_view_method_count", method="POST") == 2


def test_web_does_not_serve_metrics_on_the_public_port(scenario):
    assert scenario.public_metrics_status == 404


def test_worker_counts_what_the_relay_published_and_the_lifecycle_confirmed(scenario):
    worker, topics = scenario.scrapes["worker"], scenario.topics

    for event_type in ("order.created", "order.confirmed"):
        published = worker.value(
            "kafka_events_published_total", topic=topics[event_type], event_type=event_type, status="success"
        )
        assert published == 2, event_type
    assert worker.value("kafka_events_published_total", status="failure") is None
    assert worker.value("outbox_events_processed_total", status="published") == 4
    assert worker.value("outbox_delivery_delay_seconds_count") == 4
    assert worker.value("outbox_publish_duration_seconds_count") == 4
    assert worker.value("order_transitions_total", from_status="pending", to_status="confirmed") == 2
    # the query gauges, served by the worker only
    assert (worker.value("outbox_events_pending"), worker.value("outbox_events_dead")) == (0, 0)
    assert worker.value("outbox_oldest_pending_age_seconds") == 0
    assert worker.value("lifecycle_oldest_due_age_seconds") is not None
    # the storage and horizon gauges (catalogs): the outbox holds its four rows
    assert worker.value("outbox_table_size_bytes") >= 8192 and worker.value("outbox_index_size_bytes") >= 8192
    assert (worker.value("outbox_partitions_past_retention"), worker.value("outbox_default_partition_rows")) == (0, 0)
    assert worker.value("outbox_partitions") is not None and worker.value("outbox_dead_tuples") is not None
    assert worker.value("postgres_xmin_horizon_age_seconds") is not None
    # tasks in flight, by name, from the pool processes
    assert worker.value("background_tasks_running", task_name="outbox.relay") is not None
    assert worker.value("background_tasks_running", task_name="orders.advance") is not None


def test_consumer_counts_a_consumed_event_and_its_redelivery_as_a_duplicate(scenario):
    consumer, topic = scenario.scrapes["consumer"], scenario.topics["user.created"]

    assert consumer.value("kafka_events_consumed_total", topic=topic, result="applied") == 2
    assert consumer.value("kafka_events_consumed_total", topic=topic, result="duplicate") == 1
    assert consumer.value("kafka_events_duplicate_total", topic=topic) == 1
    assert consumer.value("kafka_consumer_lag_messages", topic=topic) == 0


def test_beat_answers_on_its_metrics_port(scenario):
    beat = scenario.scrapes["beat"]

    assert beat.value("process_start_time_seconds") is not None
    # the query gauges are the worker's alone: no other process kind queries for them
    for kind in ("web", "beat", "consumer"):
        assert scenario.scrapes[kind].value("outbox_events_pending") is None, kind


def _dashboard_expressions() -> list[str]:
    exprs = []
    for path in (CHART_DIR / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            exprs += [target["expr"] for target in panel.get("targets", [])]
    return exprs


def _alert_expressions() -> list[str]:
    (rule,) = find(chart_render([DEFAULT_VALUES_FILE], {"metrics.prometheusRule.enabled": True}), "PrometheusRule")
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def test_dashboard_and_alerts_query_only_metrics_the_processes_expose(scenario):
    exposed = set().union(*(one.names for one in scenario.scrapes.values())) | PROMETHEUS_NAMES
    dashboard, alerts = _dashboard_expressions(), _alert_expressions()
    assert len(dashboard) >= 10 and len(alerts) >= 8

    queried = {name: expr for expr in dashboard + alerts for name in promql_metric_names(expr)}
    unknown = {name: expr for name, expr in queried.items() if name not in exposed}
    assert unknown == {}
    # the service's core metrics are each on the dashboard
    for name in (
        "orders_created_total",
        "order_transitions_total",
        "outbox_events_pending",
        "outbox_events_dead",
        "outbox_oldest_pending_age_seconds",
        "outbox_delivery_delay_seconds_bucket",
        "kafka_consumer_lag_messages",
        "kafka_events_consumed_total",
    ):
        assert any(name in promql_metric_names(expr) for expr in dashboard), name


def test_the_expression_parser_finds_metrics_and_skips_functions_labels_and_keywords():
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(outbox_delivery_delay_seconds_bucket{job="x"}[5m])))'
        ' > 30 and on (namespace) absent(up{job=~"a|b"} == 1) or vector(0)'
    )
    assert promql_metric_names(expr) == {"outbox_delivery_delay_seconds_bucket", "up"}


@pytest.mark.parametrize("kind", ["web", "worker", "beat", "consumer"])
def test_a_taken_metrics_port_stops_the_process_naming_the_variable(kind, tmp_path):
    # given something already listening on the metrics port
    taken = socket.create_server(("0.0.0.0", 0))
    port = taken.getsockname()[1]
    command = {"web": GUNICORN, "worker": WORKER, "beat": BEAT, "consumer": CONSUMER}[kind]
    env = service_env(
        METRICS_PORT=str(port),
        GUNICORN_BIND=f"{LOOPBACK}:{free_port()}",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        CELERY_BROKER_URL=f"redis://{settings.REDIS_HOST}:{settings.REDIS_PORT}/{(settings.REDIS_DB + 3) % 16}",
        KAFKA_CONSUMER_GROUP_ID=f"taken-{uuid.uuid4().hex[:8]}",
    )

    # when the process starts, then it stops on its own with a message naming METRICS_PORT
    try:
        result = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert result.returncode != 0
    assert f"METRICS_PORT={port} is already in use" in result.stdout + result.stderr


def test_the_prefork_worker_refuses_to_start_without_a_multiprocess_directory(tmp_path):
    env = service_env(METRICS_PORT=str(free_port()))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    result = subprocess.run(WORKER, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR is required by the prefork worker" in result.stdout + result.stderr
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None  # the test run itself is single-process
