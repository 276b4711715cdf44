"""What /api/v1/health/ready costs when anyone can call it as often as they like:
one run of each check per second per process, shared by every caller; a hanging
dependency holds one thread; the per-check detail only for callers inside the cluster."""

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client

from devstack.threads import run_in_threads
from orders_project import health
from tests.support.black_hole import silent_port
from tests.support.waiting import wait_for

READY = "/api/v1/health/ready"
# A public address (documentation ranges like 203.0.113.0/24 count as private to ipaddress).
PUBLIC_ADDRESS = "93.184.216.34"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_readiness")]


def _counted(name: str, runs: Counter[str], before: Callable[[], None] = lambda: None) -> Callable[[], None]:
    """The real check `name`, counting its runs (and calling `before` first)."""
    real = health.CHECKS[name]
    lock = threading.Lock()

    def check() -> None:
        with lock:
            runs[name] += 1
        before()
        real()

    return check


def _check_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("health")]


def test_concurrent_calls_share_one_run_of_each_check(monkeypatch):
    # given a PostgreSQL check that holds its run until every caller has arrived
    callers = 12
    arrived: list[int] = []
    all_in = threading.Condition()
    real_view = health._VIEWS[READY]

    def arriving_view(request: HttpRequest) -> JsonResponse:
        with all_in:
            arrived.append(1)
            all_in.notify_all()
        return real_view(request)

    def until_all_arrived() -> None:
        with all_in:
            all_in.wait_for(lambda: len(arrived) == callers, timeout=30)

    runs: Counter[str] = Counter()
    monkeypatch.setitem(health._VIEWS, READY, arriving_view)
    monkeypatch.setitem(health.CHECKS, "postgres", _counted("postgres", runs, before=until_all_arrived))
    monkeypatch.setitem(health.CHECKS, "redis", _counted("redis", runs))
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 30.0)

    # when they all call at once
    responses, _ = run_in_threads(
        [lambda: Client().get(READY, {"checks": "postgres,redis"}) for _ in range(callers)], timeout=60
    )

    # then each check ran once, and every caller got its result
    assert runs == {"postgres": 1, "redis": 1}
    assert [response.status_code for response in responses] == [200] * callers
    assert {tuple(response.json()["checks"]) for response in responses} == {("postgres", "redis")}


def test_a_result_serves_later_calls_until_it_is_older_than_its_lifetime(monkeypatch):
    runs: Counter[str] = Counter()
    monkeypatch.setitem(health.CHECKS, "postgres", _counted("postgres", runs))
    probe = Client()

    monkeypatch.setattr(health, "RESULT_TTL_SECONDS", 60.0)
    fresh = [probe.get(READY, {"checks": "postgres"}).status_code for _ in range(5)]
    runs_while_fresh = runs["postgres"]
    monkeypatch.setattr(health, "RESULT_TTL_SECONDS", 0.0)
    stale = probe.get(READY, {"checks": "postgres"}).status_code

    assert (fresh, runs_while_fresh) == ([200] * 5, 1)
    assert (stale, runs["postgres"]) == (200, 2)


def test_a_hanging_dependency_holds_one_check_thread_however_many_calls_arrive(settings, monkeypatch):
    # given a Redis that accepts connections and never answers, with a client that would wait a minute
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.2)
    patient = {"SOCKET_CONNECT_TIMEOUT": 60, "SOCKET_TIMEOUT": 60}
    with silent_port() as port:
        settings.CACHES = {
            alias: {**conf, "LOCATION": f"redis://127.0.0.1:{port}/0", "OPTIONS": {**conf["OPTIONS"], **patient}}
            for alias, conf in settings.CACHES.items()
        }
        # when two waves of callers ask for the Redis check, the second after the first run's deadline
        waves = [
            run_in_threads([lambda: Client().get(READY, {"checks": "redis"}) for _ in range(8)])[0] for _ in range(2)
        ]
        hanging = _check_threads()
    # (closing the port resets the connection the run waits on: it ends)
    wait_for(lambda: not _check_threads(), "the hanging check to end")

    # then every caller was told "timeout" in time, and one thread waited on Redis, not sixteen
    answers = [(response.status_code, response.json()["checks"]) for wave in waves for response in wave]
    assert answers == [(503, {"redis": {"ok": False, "error": "timeout"}})] * 16
    assert len(hanging) == 1


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param({"REMOTE_ADDR": PUBLIC_ADDRESS}, id="public-address"),
        pytest.param({"REMOTE_ADDR": "10.42.0.3", "HTTP_X_FORWARDED_FOR": PUBLIC_ADDRESS}, id="through-the-ingress"),
    ],
)
def test_a_caller_from_outside_the_cluster_gets_the_status_only(caller: dict[str, Any]):
    response = Client(**caller).get(READY, {"checks": "postgres"})

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_the_detail_is_shown_to_everyone_when_the_setting_says_so(settings):
    settings.HEALTH_DETAIL_PUBLIC = True

    response = Client(REMOTE_ADDR=PUBLIC_ADDRESS, HTTP_X_FORWARDED_FOR=PUBLIC_ADDRESS).get(
        READY, {"checks": "postgres"}
    )

    assert response.status_code == 200
    assert response.json()["checks"]["postgres"]["ok"] is True


def test_a_kubelet_inside_the_cluster_gets_the_detail():
    response = Client(REMOTE_ADDR="10.42.0.1", HTTP_HOST="10.42.0.17").get(READY, {"checks": "postgres"})

    assert response.status_code == 200
    assert set(response.json()) == {"status", "checks"}
