"""Production settings read from the environment: what is trusted only when configured."""

import json
import subprocess
import sys

import pytest
from django.conf import settings

from tests.support.processes import TEST_SECRET_KEY

# Each case starts a fresh interpreter that loads the production settings.
pytestmark = pytest.mark.processes

_PRINT = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'proxy': s.SECURE_PROXY_SSL_HEADER, 'hosts': s.ALLOWED_HOSTS}))"
)


def _load_production_settings(**env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DJANGO_SECRET_KEY": TEST_SECRET_KEY,
        "POSTGRES_SERVER": "db.invalid",
        "DJANGO_ALLOWED_HOSTS": "orders.example.com",
    }
    return subprocess.run(
        [sys.executable, "-c", _PRINT], cwd=settings.BASE_DIR, env={**base, **env}, capture_output=True, text=True
    )


def _production_settings(**env: str) -> dict:
    result = _load_production_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_x_forwarded_proto_is_not_trusted_unless_configured():
    assert _production_settings()["proxy"] is None
    assert _production_settings(DJANGO_SECURE_PROXY_SSL_HEADER="true")["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]


@pytest.mark.parametrize(
    ("pod_ip", "hosts"), [(None, ["orders.example.com"]), ("10.1.2.3", ["orders.example.com", "10.1.2.3"])]
)
def test_the_pod_ip_is_an_allowed_host_only_when_given(pod_ip, hosts):
    env = {"POD_IP": pod_ip} if pod_ip else {}

    assert _production_settings(**env)["hosts"] == hosts


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"API_NUM_PROXIES": "1"}, "API_NUM_PROXIES is 1, but FORWARDED_ALLOW_IPS names no proxy"),
        (
            {"FORWARDED_ALLOW_IPS": "10.0.0.0/8"},
            "FORWARDED_ALLOW_IPS trusts proxies (10.0.0.0/8), but API_NUM_PROXIES is 0",
        ),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1/8", "API_NUM_PROXIES": "1"}, "FORWARDED_ALLOW_IPS must list IP addresses"),
    ],
)
def test_contradictory_proxy_settings_stop_the_start_naming_the_variable(env, message):
    result = _load_production_settings(**env)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: Environment variable {message}" in result.stderr


def test_proxies_named_and_counted_start():
    started = _production_settings(FORWARDED_ALLOW_IPS="10.0.0.0/8", API_NUM_PROXIES="1")

    assert started["hosts"] == ["orders.example.com"]
