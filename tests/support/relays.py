"""Relays beside the test's own: in a thread, or in a child process against the test database
and broker (one that can be killed with SIGKILL or paused with SIGSTOP for real)."""

import os
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection, connections


def child_env(*, kafka_bootstrap: str, topic: str, lease_seconds: int) -> dict[str, str]:
    """The environment of a child process that relays the test database's outbox to `topic`."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orders_project.settings_test",
        "PYTHONPATH": str(Path(settings.BASE_DIR)),
        "POSTGRES_DB": db["NAME"],
        "POSTGRES_SERVER": db["HOST"] or "127.0.0.1",
        "POSTGRES_PORT": str(db["PORT"] or 5432),
        "POSTGRES_USER": db["USER"],
        "POSTGRES_PASSWORD": db["PASSWORD"] or "",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_ORDER_CREATED": topic,
        "OUTBOX_RELAY_LEASE_SECONDS": str(lease_seconds),
    }


@contextmanager
def relay_child(script: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `script` (Python) in a child process whose stdout the test reads; killed on the way out."""
    with open(log, "wb") as log_file:
        child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=log_file)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        assert child.stdout is not None
        child.stdout.close()


def line_of(child: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> list[str]:
    """The child's next line of output, split in words; fails with its log's tail if none comes in time."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    line = child.stdout.readline().decode() if ready else ""
    assert line, log.read_text()[-2000:]
    return line.split()


def in_thread(work: Callable[[], object]) -> threading.Thread:
    """Start `work` in a thread of its own (its own database connection, closed at its end)."""

    def run() -> None:
        try:
            work()
        finally:
            connections.close_all()  # a thread keeps its connection otherwise

    thread = threading.Thread(target=run)
    thread.start()
    return thread
