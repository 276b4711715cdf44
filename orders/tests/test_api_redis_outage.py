"""Redis down or dropping packets degrades one endpoint, never the web tier.

Reads, history and cancels need PostgreSQL only (the rate limits let requests
through, the customer block of a read is null); a create needs the user check
and answers 503 with Retry-After; the web's readiness probe, as the chart
renders it, stays 200 so the pods stay in the Service. A Redis that accepts
connections and never answers (or never accepts them) costs a request at most
the request-path timeout, not the consumer's 2 s.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django_redis import get_redis_connection

from devstack import valkey
from devstack.deploy.chart import DEFAULT_VALUES_FILE, chart_render, containers, find
from devstack.procs import free_port
from orders.models import Order
from orders.tests.factories import SEED_PAYLOAD, OrderFactory
from tests.support.api import ORDERS_URL, cached_user, order_url
from tests.support.black_hole import full_port, silent_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_readiness")]

POD_IP = "10.42.0.17"
# The cache aliases a request uses: the rate limits' counters and the user check.
REQUEST_PATH_ALIASES = ("default", "users_lookup")


# Production's default REDIS_REQUEST_TIMEOUT_MS (the test settings raise it for loaded machines).
REQUEST_TIMEOUT_SECONDS = 0.05


def _caches_at(caches: dict[str, Any], port: int, *, request_timeout: float | None = None) -> dict[str, Any]:
    """Every cache alias at 127.0.0.1:port, each keeping its database number; with
    `request_timeout`, the request-path aliases get it as their connect and read timeout."""
    moved = {
        alias: {**conf, "LOCATION": f"redis://127.0.0.1:{port}/{conf['LOCATION'].rsplit('/', 1)[1]}"}
        for alias, conf in caches.items()
    }
    if request_timeout is not None:
        for alias in REQUEST_PATH_ALIASES:
            options = {"SOCKET_CONNECT_TIMEOUT": request_timeout, "SOCKET_TIMEOUT": request_timeout}
            moved[alias] = {**moved[alias], "OPTIONS": {**moved[alias].get("OPTIONS", {}), **options}}
    return moved


def _web_readiness_path() -> str:
    """The path of the web pods' readiness probe, as the chart renders it."""
    (web,) = [
        doc
        for doc in find(chart_render([DEFAULT_VALUES_FILE]), "Deployment")
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == "web"
    ]
    (container,) = containers(web)
    return str(container["readinessProbe"]["httpGet"]["path"])


@pytest.fixture
def limits_on(settings: Any) -> None:
    """Production's rates (the test settings turn them off), so every request asks Redis."""
    settings.API_THROTTLE_RATES = {"write": (600, 60), "read": (3000, 60), "anon": (120, 60)}


@pytest.fixture
def own_valkey(settings: Any, tmp_path: Path) -> Iterator[valkey.Server]:
    """A Valkey of the test's own that every cache alias points at; the test stops it."""
    port = free_port()
    server = valkey.start(tmp_path / "valkey", port, durable=False)
    settings.CACHES = _caches_at(settings.CACHES, port)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.usefixtures("limits_on")
def test_with_valkey_stopped_reads_and_cancels_work_creates_say_later_and_the_web_stays_ready(
    own_valkey, api_client, user, settings
):
    # given a known customer and two orders, written while Valkey was up
    settings.ORDER_REQUIRE_KNOWN_USER = True
    customer = cached_user()
    created = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": customer}, format="json")
    assert created.status_code == 201
    other = OrderFactory.create(created_by=user, user_id=customer)

    # when Valkey stops
    own_valkey.stop()
    listed = api_client.get(ORDERS_URL)
    read = api_client.get(order_url(created.json()["id"]))
    history = api_client.get(order_url(created.json()["id"], "history"))
    cancelled = api_client.post(order_url(other.pk, "cancel"), {"reason": "changed_mind"}, format="json")
    refused = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": customer}, format="json")
    probe = Client(HTTP_HOST=POD_IP)
    ready = probe.get(_web_readiness_path())
    redis_check = probe.get("/api/v1/health/ready", {"checks": "redis"})

    # then everything but the create works, and the pod stays in the Service
    assert (listed.status_code, listed.json()["count"]) == (200, 2)
    assert (read.status_code, read.json()["customer"]) == (200, None)
    assert history.status_code == 200
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert (refused.status_code, refused["Retry-After"], refused.json()["code"]) == (503, "5", "service_unavailable")
    assert Order.objects.count() == 2
    assert (ready.status_code, ready.json()["status"]) == (200, "ok")
    # (Redis really is down: the check of it says so)
    assert redis_check.status_code == 503


@pytest.mark.usefixtures("limits_on")
@pytest.mark.parametrize("black_hole", [silent_port, full_port], ids=["accepts-never-answers", "never-accepts"])
def test_a_redis_that_drops_packets_costs_a_request_its_short_timeout(black_hole, api_client, user, settings):
    order = OrderFactory.create(created_by=user, user_id="u-1")
    settings.ORDER_REQUIRE_KNOWN_USER = True
    with black_hole() as port:
        settings.CACHES = _caches_at(settings.CACHES, port, request_timeout=REQUEST_TIMEOUT_SECONDS)
        # the timeouts the request-path clients were built with (not the consumer's 2 s)
        timeouts = {
            alias: (
                get_redis_connection(alias).connection_pool.connection_kwargs["socket_connect_timeout"],
                get_redis_connection(alias).connection_pool.connection_kwargs["socket_timeout"],
            )
            for alias in REQUEST_PATH_ALIASES
        }
        listed = api_client.get(ORDERS_URL)
        read = api_client.get(order_url(order.pk))
        refused = api_client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": "u-1"}, format="json")

    assert timeouts == {alias: (REQUEST_TIMEOUT_SECONDS,) * 2 for alias in REQUEST_PATH_ALIASES}
    assert (listed.status_code, read.status_code) == (200, 200)
    assert (refused.status_code, refused["Retry-After"], refused.json()["code"]) == (503, "5", "service_unavailable")
