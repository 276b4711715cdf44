"""Per-client request rates (429 with Retry-After in the one error shape), failed
authentications per client address, and the login lockout on /admin/ and /api-auth/login/,
all counting the client by orders_project.client_ip."""

import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from orders_project.api import throttles
from orders_project.client_ip import trusted_proxies_configure
from orders_project.env import env_rate
from tests.support.api import ORDERS_URL

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clock_mid_window(monkeypatch) -> None:
    """The counters are fixed windows of the wall clock (a minute here): a test whose requests
    straddle a window's end sees its count start again. The throttle reads a clock stopped
    mid-window, so what a test counts is the rule and never the second it ran in."""
    stopped = (time.time() // 3600) * 3600 + 30
    monkeypatch.setattr(throttles, "time", SimpleNamespace(time=lambda: stopped))


@pytest.fixture
def rates(settings: Any, redis_flushed: None) -> dict[str, Any]:
    settings.API_THROTTLE_RATES = {"write": (2, 60), "read": (3, 60), "anon": (2, 60), "auth_failure": None}
    return settings.API_THROTTLE_RATES


@pytest.fixture
def behind_ingress(settings: Any) -> None:
    """One ingress controller in the pod network (10.0.0.0/8) appends to X-Forwarded-For."""
    settings.API_NUM_PROXIES = 1
    settings.API_TRUSTED_PROXIES = trusted_proxies_configure(forwarded_allow_ips="10.0.0.0/8", num_proxies=1)


@pytest.fixture
def redis_flushed() -> None:
    from django_redis import get_redis_connection

    get_redis_connection("default").flushdb()


def test_reads_beyond_the_rate_get_429_with_retry_after(rates, api_client):
    answers = [api_client.get(ORDERS_URL).status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    refused = api_client.get(ORDERS_URL)
    assert refused.json()["code"] == "throttled"
    assert set(refused.json()) == {"code", "message", "details"}
    assert int(refused["Retry-After"]) == 30  # the rest of the minute


def test_writes_have_their_own_rate_per_client(rates, api_client, other_client):
    body = {"user_id": "u-1", "currency": "USD", "items": [{"product_id": "p", "quantity": 1, "price": "1.00"}]}

    mine = [api_client.post(ORDERS_URL, body, format="json").status_code for _ in range(3)]
    # another client, and this client's reads, are not affected
    theirs = other_client.post(ORDERS_URL, body, format="json").status_code
    my_read = api_client.get(ORDERS_URL).status_code

    assert mine == [201, 201, 429]
    assert (theirs, my_read) == (201, 200)


def test_anonymous_requests_are_limited_per_client_address_behind_the_proxy(rates, behind_ingress):
    # the schema is public and costly to build: anonymous callers get the anon rate
    first = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    second = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.8")

    from_first = [first.get("/api/schema/").status_code for _ in range(3)]
    from_second = second.get("/api/schema/").status_code

    # same proxy, different clients behind it: counted apart
    assert from_first == [200, 200, 429]
    assert from_second == 200


def test_a_direct_caller_cannot_dodge_the_anonymous_rate_with_x_forwarded_for(rates, behind_ingress):
    # a caller that reaches the port directly (not through the ingress) forwards a new address each time
    answers = [
        APIClient(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").get("/api/schema/").status_code
        for n in range(3)
    ]

    assert answers == [200, 200, 429]


@pytest.fixture
def auth_failure_rate(settings: Any, redis_flushed: None) -> None:
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "auth_failure": (3, 60)}


def test_bad_tokens_beyond_the_rate_get_429_before_any_token_lookup(auth_failure_rate, api_client):
    # given a caller guessing tokens, and a client with a good token at another address
    guesser = APIClient(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Token " + "0" * 64)

    # when it guesses beyond the rate of failed authentications
    answers = [guesser.get(ORDERS_URL).status_code for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        refused = guesser.get(ORDERS_URL)

    # then the guess past the rate is refused without looking its token up
    assert answers == [401, 401, 401]
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert set(refused.json()) == {"code", "message", "details"}
    assert int(refused["Retry-After"]) == 30  # the rest of the minute
    assert len(queries) == 0
    # and nobody else is affected
    assert api_client.get(ORDERS_URL).status_code == 200


def test_requests_without_credentials_count_as_failed_authentications(auth_failure_rate):
    anonymous = APIClient(REMOTE_ADDR="203.0.113.9")
    other = APIClient(REMOTE_ADDR="203.0.113.10")

    answers = [anonymous.get(ORDERS_URL).status_code for _ in range(4)]

    assert answers == [401, 401, 401, 429]
    assert other.get(ORDERS_URL).status_code == 401


def test_rate_values_are_checked_at_start(monkeypatch):
    monkeypatch.setenv("API_THROTTLE_READ_RATE", "lots")
    with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_READ_RATE must be a rate like '600/min'"):
        env_rate("API_THROTTLE_READ_RATE", "3000/min")
    monkeypatch.setenv("API_THROTTLE_READ_RATE", "50/h")
    assert env_rate("API_THROTTLE_READ_RATE", "3000/min") == (50, 3600)
    monkeypatch.setenv("API_THROTTLE_READ_RATE", "off")
    assert env_rate("API_THROTTLE_READ_RATE", "3000/min") is None


@pytest.mark.parametrize("login_url", ["/admin/login/", "/api-auth/login/"])
def test_repeated_failed_logins_lock_the_username_from_that_address(settings, login_url):
    settings.AXES_FAILURE_LIMIT = 3
    get_user_model().objects.create_user("ops", password="right-password-123", is_staff=True)
    attacker = Client(REMOTE_ADDR="203.0.113.9")

    failures = [attacker.post(login_url, {"username": "ops", "password": f"guess-{n}"}).status_code for n in range(3)]
    # the right password no longer helps from there
    locked = attacker.post(login_url, {"username": "ops", "password": "right-password-123"})
    # the owner, from elsewhere, still gets in
    owner = Client(REMOTE_ADDR="192.0.2.10").post(login_url, {"username": "ops", "password": "right-password-123"})

    assert failures == [200, 200, 429]
    assert locked.status_code == 429
    assert locked.json()["code"] == "throttled"
    assert int(locked["Retry-After"]) == 15 * 60
    assert owner.status_code == 302


def _admin_login(client: Client, password: str, *, forwarded: str) -> int:
    return client.post(
        "/admin/login/", {"username": "ops", "password": password}, HTTP_X_FORWARDED_FOR=forwarded
    ).status_code


def test_a_direct_caller_spoofing_x_forwarded_for_is_locked_out_by_its_own_address(behind_ingress):
    # given a staff login and a caller that reaches the port directly, forwarding a new address per attempt
    get_user_model().objects.create_user("ops", password="right-password-123", is_staff=True)
    attacker = Client(REMOTE_ADDR="203.0.113.9")

    # when it guesses five times (AXES_FAILURE_LIMIT's default)
    failures = [_admin_login(attacker, f"guess-{n}", forwarded=f"198.51.100.{n}") for n in range(5)]
    right = _admin_login(attacker, "right-password-123", forwarded="192.0.2.99")

    # then it is locked out by its own address, whatever it forwarded
    assert failures == [200, 200, 200, 200, 429]
    assert right == 429


def test_an_ipv6_client_cannot_dodge_the_lockout_by_walking_its_64(behind_ingress):
    get_user_model().objects.create_user("ops", password="right-password-123", is_staff=True)
    ingress = Client(REMOTE_ADDR="10.0.0.2")

    failures = [_admin_login(ingress, f"guess-{n}", forwarded=f"2001:db8:1:2::{n + 1:x}") for n in range(5)]

    assert failures == [200, 200, 200, 200, 429]


def test_clients_behind_the_same_proxy_are_locked_out_apart(behind_ingress):
    # given two clients whose requests both arrive from the ingress controller (10.0.0.2)
    get_user_model().objects.create_user("ops", password="right-password-123", is_staff=True)
    ingress = Client(REMOTE_ADDR="10.0.0.2")

    # when one of them guesses five times, writing the other's address into X-Forwarded-For
    failures = [_admin_login(ingress, f"guess-{n}", forwarded="192.0.2.10, 198.51.100.7") for n in range(5)]
    owner = _admin_login(ingress, "right-password-123", forwarded="192.0.2.10")

    # then that client is locked out, and the owner behind the same proxy still gets in
    assert failures == [200, 200, 200, 200, 429]
    assert owner == 302
