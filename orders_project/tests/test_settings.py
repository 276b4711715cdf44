"""Production settings read from the environment: what is trusted only when configured."""

import json
import subprocess
import sys

import pytest
from django.conf import settings

from orders_project.tests.processes import TEST_SECRET_KEY

_PRINT = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'proxy': s.SECURE_PROXY_SSL_HEADER, 'hosts': s.ALLOWED_HOSTS}))"
)


def _production_settings(**env: str) -> dict:
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DJANGO_SECRET_KEY": TEST_SECRET_KEY,
        "POSTGRES_SERVER": "db.invalid",
        "DJANGO_ALLOWED_HOSTS": "orders.example.com",
    }
    result = subprocess.run(
        [sys.executable, "-c", _PRINT],
        cwd=settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
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
