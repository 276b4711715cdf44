"""Procfile.dev's background processes (worker, beat, consumer) on a bench stack, with their peak memory."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from honcho.environ import parse_procfile

from devstack.bench.api import PeakMemory
from devstack.bench.stack import Stack
from devstack.procs import free_port, log_tail


@dataclass
class Background:
    name: str
    popen: subprocess.Popen[bytes]
    memory: PeakMemory
    log: Path

    def check_running(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited {self.popen.returncode}:\n{log_tail(self.log)}")


@contextmanager
def procfile_process(stack: Stack, name: str, *args: str, env: dict[str, str] | None = None) -> Iterator[Background]:
    """Procfile.dev's `name` process (the command `make dev` runs), `args` appended, on this stack,
    with a metrics port of its own; stopped with SIGTERM (as Kubernetes does) when the block ends."""
    command = parse_procfile((stack.repo / "Procfile.dev").read_text()).processes[name]
    metrics = stack.folder / f"prometheus-{name}"
    metrics.mkdir(exist_ok=True)
    full_env = {**stack.env, "METRICS_PORT": str(free_port()), "PROMETHEUS_MULTIPROC_DIR": str(metrics), **(env or {})}
    log_path = stack.folder / f"{name}.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [*shlex.split(command), *args], cwd=stack.repo, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield Background(name, child, PeakMemory(child.pid), log_path)
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
