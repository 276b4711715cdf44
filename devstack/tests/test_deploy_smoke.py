"""deploy-smoke's translation of rendered manifests into local processes: the environment
Kubernetes would give a container, $(VAR) expansion, the per-process /tmp, the image's ENV."""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from devstack import sandbox
from devstack.deploy.chart import DEFAULT_VALUES_FILE, chart_render
from devstack.deploy_smoke import image, kube_env, pod, processes, steps
from devstack.procs import Server

POD = {"name": "order-service-web-smoke", "namespace": "orders", "labels": {"app": "web"}}


def _noop() -> None:
    pass


def _servers() -> pod.Servers:
    return pod.Servers(
        postgres=Server("PostgreSQL", "127.0.0.1", 15432, _noop),
        valkey=Server("Valkey", "127.0.0.1", 16379, _noop),
        kafka=Server("Kafka", "127.0.0.1", 19092, _noop),
        database="orders",
    )


def _manifests() -> list[dict[str, Any]]:
    return [
        {"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"LOG_LEVEL": "INFO", "REDIS_HOST": "valkey"}},
        {
            "kind": "Secret",
            "metadata": {"name": "sec"},
            "data": {"DJANGO_SECRET_KEY": base64.b64encode(b"s" * 50).decode()},
            "stringData": {"REDIS_PASSWORD": "pw"},
        },
    ]


def test_expand_replaces_known_names_keeps_unknown_and_unescapes_dollars() -> None:
    env = {"A": "1", "B": "two"}
    assert kube_env.expand("$(A)-$(B)-$(C)-$$(A)", env) == "1-two-$(C)-$(A)"


def test_chart_env_applies_env_from_then_env_in_order() -> None:
    container = {
        "name": "web",
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}, "prefix": "S_"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "DEBUG"},
            {"name": "URL", "value": "redis://$(REDIS_HOST)/0"},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "DJANGO_SECRET_KEY"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        ],
        "resources": {"limits": {"cpu": "1500m", "memory": "768Mi"}},
    }

    env = kube_env.chart_env(container, _manifests(), POD)

    assert env == {
        "LOG_LEVEL": "DEBUG",
        "REDIS_HOST": "valkey",
        "S_DJANGO_SECRET_KEY": "s" * 50,
        "S_REDIS_PASSWORD": "pw",
        "URL": "redis://valkey/0",
        "KEY": "s" * 50,
        "POD_IP": "127.0.0.1",
        "APP": "web",
        "CPUS": "2",
        "MEM_MI": "768",
    }


def test_chart_env_names_a_secret_the_chart_does_not_render() -> None:
    container = {"name": "web", "envFrom": [{"secretRef": {"name": "made-by-terraform"}}]}
    with pytest.raises(steps.SmokeFailed, match="made-by-terraform"):
        kube_env.chart_env(container, _manifests(), POD)


def test_local_env_moves_only_the_charts_tmp_paths_and_overrides_the_addresses(tmp_path: Path) -> None:
    process_tmp = Path("/tmp/smoke/pods/worker")
    venv_bin = Path("/tmp/clone/.venv/bin")  # a clone under /tmp must keep its venv on PATH
    chart = {"HEARTBEAT_FILE": "/tmp/heartbeat", "POSTGRES_SERVER": "db", "LOG_LEVEL": "INFO", "TMP": "/tmp"}

    env = pod.local_env(chart, {"PYTHONUNBUFFERED": "1"}, _servers(), process_tmp, tmp_path, venv_bin)

    assert env["PATH"].startswith("/tmp/clone/.venv/bin:")
    assert env["HOME"] == pod.UNWRITABLE_HOME
    assert env["HEARTBEAT_FILE"] == "/tmp/smoke/pods/worker/heartbeat"
    assert env["TMP"] == "/tmp/smoke/pods/worker"
    assert (env["POSTGRES_SERVER"], env["POSTGRES_PORT"], env["POSTGRES_PASSWORD"]) == ("127.0.0.1", "15432", "")
    assert (env["REDIS_HOST"], env["REDIS_PORT"]) == ("127.0.0.1", "16379")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    assert env["DJANGO_STATIC_ROOT"] == str(tmp_path)
    assert env["LOG_LEVEL"] == "INFO"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert "CELERY_BROKER_URL" not in env  # the chart set none: the settings derive it from REDIS_*


def test_local_env_keeps_the_celery_database_number() -> None:
    chart = {"CELERY_BROKER_URL": "redis://:secret@valkey:6379/5"}
    env = pod.local_env(chart, {}, _servers(), Path("/x"), Path("/s"), Path("/v"))
    assert env["CELERY_BROKER_URL"] == "redis://127.0.0.1:16379/5"


def test_chart_command_rewrites_tmp_before_expanding() -> None:
    container = pod.Container(
        pod="beat",
        name="beat",
        spec={},
        argv=[],
        env={"HEARTBEAT_FILE": "/tmp/smoke/pods/beat/heartbeat"},
        grace_seconds=30,
        tmp=Path("/tmp/smoke/pods/beat"),
    )
    command = ["python", "-m", "orders_project.heartbeat", "/tmp/heartbeat", "$(HEARTBEAT_FILE)"]
    assert processes.chart_command(container, command) == [
        "python",
        "-m",
        "orders_project.heartbeat",
        "/tmp/smoke/pods/beat/heartbeat",
        "/tmp/smoke/pods/beat/heartbeat",
    ]


def test_image_env_and_cmd_come_from_the_last_stage(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.13-slim AS build\n"
        "ENV BUILD_ONLY=1\n"
        "FROM python:3.13-slim AS runtime\n"
        "ENV PATH=/opt/venv/bin:$PATH \\\n"
        "    # a comment inside the instruction\n"
        '    GREETING="hello world" \\\n'
        "    DJANGO_SETTINGS_MODULE=orders_project.settings\n"
        "ENV LEGACY value with spaces\n"
        'CMD ["gunicorn", "--config", "python:orders_project.gunicorn_conf", "orders_project.wsgi"]\n'
    )

    env, cmd = image.image_env_and_cmd(tmp_path)

    assert env == {
        "GREETING": "hello world",
        "DJANGO_SETTINGS_MODULE": "orders_project.settings",
        "LEGACY": "value with spaces",
    }
    assert cmd == ["gunicorn", "--config", "python:orders_project.gunicorn_conf", "orders_project.wsgi"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("500m", 0.5), ("2", 2.0), ("1Gi", 1024**3), ("128Mi", 128 * 1024**2), ("1k", 1000.0)],
)
def test_quantity(value: str, expected: float) -> None:
    assert kube_env.quantity(value) == expected


def test_sandboxed_containers_run_as_the_user_the_chart_names() -> None:
    if sandbox.available() is not None:
        pytest.skip(f"no sandbox here: {sandbox.available()}")
    manifests = chart_render([DEFAULT_VALUES_FILE])
    deployments, _job = pod.workloads(manifests)
    # Not under /tmp: the sandbox mounts each process's folder over /tmp.
    scratch = Path(tempfile.mkdtemp(prefix="sandbox-test-", dir=sandbox.SCRATCH_PARENT))
    try:
        host = pod.Host(({}, []), _servers(), scratch / "pods", scratch, Path("/v"), scratch / "stage")
        _inits, (worker,) = pod.resolve_pod(deployments["worker"], manifests, host)
        assert worker.sandbox is not None
        assert (worker.sandbox.uid, worker.sandbox.gid) == (10001, 10001)
        assert worker.sandbox.writable == worker.tmp
        assert worker.tmp.stat().st_uid == 10001
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
