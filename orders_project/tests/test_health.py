"""/api/v1/health/live and /ready: answered for any Host (kubelet probes send the pod IP),
never redirected to HTTPS, 503 with a per-check result when a dependency is down.
The cost of a flood of calls is in test_health_cost.py."""

import os
import socket
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from devstack import valkey
from devstack.procs import free_port
from tests.support.waiting import wait_for

LIVE = "/api/v1/health/live"
READY = "/api/v1/health/ready"
POD_IP = "10.42.0.17"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_readiness")]


@pytest.fixture
def probe(settings: Any) -> Client:
    """A client that talks like a kubelet: the pod IP as Host, plain HTTP, under production security settings."""
    settings.ALLOWED_HOSTS = ["orders.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    return Client(HTTP_HOST=POD_IP)


def test_live_answers_a_probe_whose_host_is_the_pod_ip(probe):
    response = probe.get(LIVE)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_other_paths_still_refuse_the_pod_ip_host(probe):
    # the bypass is for the probe paths only: the API keeps its host check
    assert probe.get("/api/v1/orders/").status_code == 400


@pytest.mark.kafka
def test_ready_checks_postgres_redis_and_kafka(probe, kafka_bootstrap):
    response = probe.get(READY)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "postgres": True,
        "redis": True,
        "kafka": True,
    }


def test_ready_is_503_naming_kafka_when_no_broker_answers(probe, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = [f"127.0.0.1:{free_port()}"]  # nothing listens there

    response = probe.get(READY)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["kafka"]["ok"] is False
    # the error's kind only: no address or message leaks to an unauthenticated caller
    assert "127.0.0.1" not in response.content.decode()


def test_ready_limited_to_postgres_and_redis_ignores_kafka(probe, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = [f"127.0.0.1:{free_port()}"]

    response = probe.get(READY, {"checks": "postgres,redis"})

    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"postgres", "redis"}


def test_ready_is_503_naming_redis_when_redis_is_down(probe, settings):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }

    response = probe.get(READY, {"checks": "postgres,redis"})

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"] == {"ok": False, "error": "ConnectionError"}
    assert checks["postgres"]["ok"] is True


def test_ready_refuses_an_unknown_check_in_the_error_shape(probe):
    response = probe.get(READY, {"checks": "postgres,mysql"})

    assert response.status_code == 400
    assert response.json() == {
        "code": "validation_error",
        "message": "Unknown checks ['mysql']; known: ['kafka', 'postgres', 'redis'].",
        "details": {},
    }


def test_health_paths_take_only_get_and_head(probe):
    response = probe.post(LIVE)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["code"] == "method_not_allowed"
    assert probe.head(LIVE).status_code == 200


def test_connections_have_statement_and_lock_timeouts():
    # one slow query or lock wait cannot hold a web worker forever (defaults 30 s and 5 s)
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        statement_timeout = cursor.fetchone()[0]
        cursor.execute("SHOW lock_timeout")
        lock_timeout = cursor.fetchone()[0]

    assert (statement_timeout, lock_timeout) == ("30s", "5s")


def test_connections_give_up_on_a_silent_database_host_within_the_tcp_timeouts():
    # A host that vanishes drops packets instead of refusing them; causing that for real
    # needs a firewall rule on the machine, so this reads what libpq set on the live
    # connection's socket: the kernel then ends it in ~20 s, not ~15 min of retransmits.
    connection.ensure_connection()
    # a duplicate of the descriptor: closing it leaves the connection's own open
    with socket.socket(fileno=os.dup(connection.connection.fileno())) as raw:
        assert raw.family in (socket.AF_INET, socket.AF_INET6), "the test database is reached over TCP"
        options = {
            "keepalive": raw.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "idle": raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "interval": raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "count": raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "user_timeout_ms": raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }

    assert options == {"keepalive": 1, "idle": 10, "interval": 5, "count": 3, "user_timeout_ms": 20_000}


@pytest.mark.kafka
def test_ready_turns_503_while_the_broker_is_unreachable_and_200_when_it_returns(probe, proxied_kafka):
    assert probe.get(READY).status_code == 200

    proxied_kafka.proxy.cut()
    # a result is shared for up to a second: the outage shows on the next run
    down = wait_for(lambda: (r := probe.get(READY)).status_code == 503 and r, "readiness to see the outage")
    proxied_kafka.proxy.restore()
    back = wait_for(lambda: (r := probe.get(READY)).status_code == 200 and r, "readiness to come back")

    assert down.status_code == 503
    assert down.json()["checks"]["kafka"]["ok"] is False
    assert back.json()["status"] == "ok"


def test_ready_turns_503_while_redis_is_down_and_200_when_it_is_back(probe, settings, tmp_path):
    # given the readiness check pointed at a Valkey of the test's own
    port = free_port()
    server = valkey.start(tmp_path / "valkey", port, durable=False)
    settings.CACHES = {
        alias: {**cache, "LOCATION": f"redis://127.0.0.1:{port}/0"} for alias, cache in settings.CACHES.items()
    }
    try:
        up = probe.get(READY, {"checks": "redis"})
        # when it stops, then starts again on the same port
        server.stop()
        # a result is shared for up to a second: the outage shows on the next run
        down = wait_for(
            lambda: (r := probe.get(READY, {"checks": "redis"})).status_code == 503 and r, "readiness to see it"
        )
        server = valkey.start(tmp_path / "valkey", port, durable=False)
        back = wait_for(
            lambda: (r := probe.get(READY, {"checks": "redis"})).status_code == 200 and r, "readiness to come back"
        )
    finally:
        server.stop()

    assert up.status_code == 200
    assert down.status_code == 503
    assert down.json()["checks"]["redis"]["ok"] is False
    assert back.json() == {
        "status": "ok",
        "checks": {"redis": {"ok": True, "ms": back.json()["checks"]["redis"]["ms"]}},
    }
