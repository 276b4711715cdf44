"""The production commands, run for real as child processes with production settings:
gunicorn with the project's config serves the API docs offline from collected,
hashed static files and finishes an in-flight request on SIGTERM; the worker,
beat and the consumer keep their heartbeat file fresh and exit 0 on SIGTERM."""

import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from devstack.procs import LOOPBACK, free_port
from orders_project.heartbeat import TOUCH_INTERVAL_SECONDS
from orders_project.heartbeat_probe import heartbeat_age
from tests.support.processes import BIN, GUNICORN, answers, http_get, service_env, service_process
from tests.support.waiting import wait_for

# transaction=True: the children read and write the test database, so the test
# must commit what it writes and must not hold a transaction open around them.
pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

PROBE = str(Path(settings.BASE_DIR) / "orders_project" / "heartbeat_probe.py")


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the image build does: collectstatic with production settings (hashed, compressed names)."""
    root = tmp_path_factory.mktemp("staticfiles")
    env = {
        **service_env(DJANGO_STATIC_ROOT=str(root)),
        "POSTGRES_SERVER": "unused.invalid",  # collectstatic must not need the database
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
    )
    return root


def test_gunicorn_serves_the_api_docs_offline_from_collected_static(tmp_path, collected_static):
    port = free_port()
    env = service_env(DJANGO_STATIC_ROOT=str(collected_static), GUNICORN_BIND=f"{LOOPBACK}:{port}", POD_IP="10.42.0.17")
    base = f"http://{LOOPBACK}:{port}"
    with service_process(GUNICORN, env, tmp_path / "gunicorn.log") as web:
        wait_for(lambda: answers(f"{base}/api/v1/health/live") or not web.alive(), "gunicorn to answer")
        assert web.alive()

        # POD_IP (from the chart) is an allowed host, others are not (/metrics is on METRICS_PORT:
        # test_process_metrics.py)
        assert http_get(f"{base}/api/v1/orders/", Host="10.42.0.17")[0] == 401
        assert http_get(f"{base}/api/v1/orders/", Host="10.42.0.18")[0] == 400

        for page in ("/api/docs/", "/api/redoc/"):
            status, _, body = http_get(base + page)
            assert status == 200
            assets = re.findall(r'(?:src|href)="([^"]+)"', body.decode())
            # every asset is this service's own, with a content hash in its name
            assert assets
            assert all(re.fullmatch(r"/static/\S+\.[0-9a-f]{12}\.\w+", asset) for asset in assets), assets
            for asset in assets:
                asset_status, headers, _ = http_get(base + asset, **{"Accept-Encoding": "gzip"})
                assert asset_status == 200
                if asset.endswith(".js"):
                    assert headers["Content-Encoding"] == "gzip"
                    assert "immutable" in headers["Cache-Control"]


def test_gunicorn_finishes_an_in_flight_request_on_sigterm(tmp_path):
    # A "broker" that accepts connections and never answers: the readiness check of
    # Kafka then runs its full 2 s, which keeps a request in flight while we stop gunicorn.
    silent = socket.create_server((LOOPBACK, 0))
    silent.settimeout(30)
    port = free_port()
    env = service_env(
        GUNICORN_BIND=f"{LOOPBACK}:{port}",
        KAFKA_BOOTSTRAP_SERVERS=f"{LOOPBACK}:{silent.getsockname()[1]}",
    )
    base = f"http://{LOOPBACK}:{port}"
    result: dict[str, Any] = {}
    with service_process(GUNICORN, env, tmp_path / "gunicorn.log") as web:
        wait_for(lambda: answers(f"{base}/api/v1/health/live") or not web.alive(), "gunicorn to answer")

        def request_ready() -> None:
            result["response"] = http_get(f"{base}/api/v1/health/ready")

        client = threading.Thread(target=request_ready)
        client.start()
        connection, _ = silent.accept()  # the request is now inside the Kafka check
        # when gunicorn is told to stop mid-request
        exit_code = web.stop(timeout=25)
        client.join(10)
        connection.close()
    silent.close()

    # then the request got its full answer and gunicorn exited cleanly
    status, _, body = result["response"]
    assert status == 503
    assert b'"kafka": {"ok": false' in body
    assert exit_code == 0


def _wait_for_two_beats(path: Path, process: Any, what: str) -> None:
    wait_for(lambda: path.exists() or not process.alive(), f"{what} to write its heartbeat")
    assert process.alive(), process.log()[-2000:]
    first = path.stat().st_mtime
    wait_for(
        lambda: path.stat().st_mtime > first or not process.alive(),
        f"{what} to touch its heartbeat again",
        timeout=TOUCH_INTERVAL_SECONDS * 4,
    )
    assert process.alive(), process.log()[-2000:]
    assert heartbeat_age(path) is not None
    probe = subprocess.run([sys.executable, "-I", "-S", PROBE, str(path), "--max-age", "60"])
    assert probe.returncode == 0


def test_celery_worker_keeps_its_heartbeat_fresh_and_stops_on_sigterm(tmp_path):
    heartbeat = tmp_path / "heartbeat"
    args = [str(BIN / "celery"), "-A", "orders_project", "worker", "--loglevel", "INFO"]
    args += ["--without-mingle", "--without-gossip"]
    env = service_env(HEARTBEAT_FILE=str(heartbeat), CELERY_WORKER_CONCURRENCY="1")
    with service_process(args, env, tmp_path / "worker.log") as worker:
        _wait_for_two_beats(heartbeat, worker, "the worker")
        assert worker.stop(timeout=25) == 0


def test_celery_beat_keeps_its_heartbeat_fresh_and_stops_on_sigterm(tmp_path, beat_broker_url):
    heartbeat = tmp_path / "heartbeat"
    args = [str(BIN / "celery"), "-A", "orders_project", "beat", "--loglevel", "INFO", "--pidfile="]
    env = service_env(HEARTBEAT_FILE=str(heartbeat), CELERY_BROKER_URL=beat_broker_url)
    with service_process(args, env, tmp_path / "beat.log") as beat:
        _wait_for_two_beats(heartbeat, beat, "beat")
        assert beat.stop(timeout=25) == 0


@pytest.mark.kafka
def test_user_event_consumer_keeps_its_heartbeat_fresh_and_stops_on_sigterm(tmp_path, kafka_bootstrap):
    heartbeat = tmp_path / "heartbeat"
    args = [sys.executable, "manage.py", "consume_user_events", "--session-timeout-ms", "6000"]
    env = service_env(HEARTBEAT_FILE=str(heartbeat), KAFKA_CONSUMER_GROUP_ID=f"heartbeat-{free_port()}")
    with service_process(args, env, tmp_path / "consumer.log") as consumer:
        _wait_for_two_beats(heartbeat, consumer, "the consumer")
        assert consumer.stop(timeout=25) == 0
