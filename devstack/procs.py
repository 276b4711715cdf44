"""Process and port helpers shared by the embedded servers."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

LOOPBACK = "127.0.0.1"
# Set in the environment of everything `make dev` starts, with the .dev folder as
# value, so that a later run can find what a crashed run left behind.
OWNER_ENV = "ORDERS_DEVSTACK_HOME"


class DevstackError(RuntimeError):
    """A server could not be started or stopped; the message says what to do."""


@dataclass
class Server:
    """A running server and how to stop it."""

    name: str
    host: str
    port: int
    stop: Callable[[], None]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(host: str, port: int, what: str, hint: str) -> None:
    if port_accepts(host, port):
        raise DevstackError(f"{what}: port {host}:{port} is already in use by another program. {hint}")


def wait_for_port(host: str, port: int, deadline: float, alive: Callable[[], bool], what: str) -> None:
    """Wait until host:port accepts connections; fail when `alive()` turns false or at `deadline`."""
    while True:
        if port_accepts(host, port):
            return
        if not alive():
            raise DevstackError(f"{what} exited during start-up")
        if time.monotonic() > deadline:
            raise DevstackError(f"{what} did not accept connections on {host}:{port} in time")
        time.sleep(0.05)


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process(pid: int | None) -> psutil.Process | None:
    """The live process with this pid, or None."""
    if pid is None or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def stop_processes(procs: list[psutil.Process], timeout: float = 10.0) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL what is left."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def sweep_leftovers(home: Path) -> list[str]:
    """Stop processes a previous, crashed run left behind (marked with OWNER_ENV=home).

    PostgreSQL is left out: it is stopped cleanly through its data folder.
    Returns a description of what was stopped.
    """
    me = os.getpid()
    mine = {me, *(p.pid for p in psutil.Process(me).parents())}
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["pid", "name"]):
        if proc.pid in mine or proc.info["name"] == "postgres":
            continue
        try:
            if proc.environ().get(OWNER_ENV) == str(home):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    described = []
    relays = []
    for proc in found:
        try:
            described.append(f"{proc.name()} (pid {proc.pid})")
            # Forks of a killed devstack (honcho's output relays) ignore SIGTERM.
            if any("devstack" in part for part in proc.cmdline()):
                relays.append(proc)
        except psutil.NoSuchProcess:
            pass
    for proc in relays:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    stop_processes([p for p in found if p not in relays], timeout=5)
    return described


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])
