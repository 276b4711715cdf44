"""Run the service's real commands (gunicorn, celery, manage.py) as child processes
against the test session's servers, with production settings (DJANGO_DEBUG off).

The child's environment names the servers the tests use (the test database,
the test Redis database, the session's Kafka), so what a child writes the
test can read, and what the test writes the child sees.
"""

import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from devstack.django_env import servers_env
from devstack.procs import free_port

BIN = Path(sys.executable).parent
TEST_SECRET_KEY = "process-test-secret-key-" + "x" * 40


def service_env(**overrides: str) -> dict[str, str]:
    """The environment of a production process that uses the test session's servers."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": TEST_SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "orders.example.com",
        **servers_env(),  # the test database, created by pytest-django; the session's Redis
        "KAFKA_BOOTSTRAP_SERVERS": ",".join(settings.KAFKA_BOOTSTRAP_SERVERS),
        # Each child serves /metrics on a port of its own (the default 9100 would collide
        # between children) and, if it has several processes, shares a fresh folder.
        "METRICS_PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="orders-test-metrics-"),
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(overrides)
    return env


class ServiceProcess:
    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        repo = Path(settings.BASE_DIR)
        self.popen = subprocess.Popen(args, cwd=repo, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait up to `timeout`, SIGKILL if still running; returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


@contextmanager
def service_process(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[ServiceProcess]:
    """A running child that is stopped (SIGTERM, then SIGKILL) when the block ends; its log is
    printed when the block fails, so a failed test shows what the process said."""
    process = ServiceProcess(args, env, log_path)
    try:
        yield process
    except BaseException:
        print(f"--- log of {' '.join(args)} ---\n{process.log()[-4000:]}")
        raise
    finally:
        process.stop()


# The web process as the chart runs it.
GUNICORN = [str(BIN / "gunicorn"), "--config", "python:orders_project.gunicorn_conf", "orders_project.wsgi"]
# The host the production settings allow.
HOST = "orders.example.com"


def http_get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET `url` as a client behind the ingress would send it: the production host, over HTTPS."""
    request = urllib.request.Request(url, headers={"Host": HOST, "X-Forwarded-Proto": "https", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def answers(url: str) -> bool:
    """`url` answers 200 (a server still starting refuses the connection)."""
    try:
        return http_get(url)[0] == 200
    except OSError:
        return False
